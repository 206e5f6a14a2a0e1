use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
#[storage(validate = check)]
struct Config {
    #[availability(kind = "Section")]
    #[storage(validate = check)]
    csv: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {}
