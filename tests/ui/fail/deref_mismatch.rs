use std::path::Path;

use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    // `deref` passes `&str`: a validator taking `&String` does not fit.
    #[storage(validate = check_owned, deref)]
    name: String,
    // `String` dereferences to `str`, not `Path`.
    #[storage(validate = check_dir, deref)]
    dir: String,
}

#[allow(clippy::ptr_arg)]
fn check_owned(_: &String) -> Outcome {
    Outcome::ok()
}

fn check_dir(_: &Path) -> Outcome {
    Outcome::ok()
}

fn main() {}
