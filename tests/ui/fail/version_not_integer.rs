use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check, version = "x")]
    csv: u32,
    #[storage(validate = check, version = 5000000000)]
    kv: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {}
