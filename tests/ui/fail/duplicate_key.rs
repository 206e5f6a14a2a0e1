use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check, version = 2, version = 3)]
    csv: u32,
    #[storage(validate = check)]
    #[storage(validate = check)]
    kv: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {}
