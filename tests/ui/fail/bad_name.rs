use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check, name = "Bad-Name")]
    csv: u32,
    #[storage(validate = check, name = "")]
    kv: u32,
    #[storage(validate = check, name = "1st")]
    first: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {}
