//! Empty: the package exists for its examples (`examples/quickstart.rs`), which build
//! only the runtime and serde, not the runtime's dev-dependencies.
