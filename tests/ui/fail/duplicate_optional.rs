use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check, optional, optional)]
    csv: u32,
    #[storage(validate = check, optional = true)]
    #[storage(optional = false)]
    kv: u32,
    #[storage(validate = check, optional = "yes")]
    search: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {}
