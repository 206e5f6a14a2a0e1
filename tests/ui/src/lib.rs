//! The trybuild cases of `#[derive(StorageAvailability)]` live in `fail/` and `pass/`, run by
//! `tests/ui.rs`. This library is empty: the package exists to keep the dependencies that
//! trybuild compiles for its own project light.
