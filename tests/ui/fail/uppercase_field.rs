#![allow(non_snake_case)]

use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check)]
    Csv: u32,
    // With a name the field name does not matter.
    #[storage(validate = check, name = "kv")]
    KV: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {}
