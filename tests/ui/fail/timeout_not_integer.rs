use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check, timeout_ms = "x")]
    csv: u32,
    #[storage(validate = check, timeout_ms = 1.5)]
    kv: u32,
    #[storage(validate = check, timeout_ms = -1)]
    vector: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {}
