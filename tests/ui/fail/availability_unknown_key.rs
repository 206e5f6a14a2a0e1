use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
#[availability(kind_name = "Section")]
struct Config {
    #[storage(validate = check)]
    csv: u32,
}

#[derive(serde::Serialize, StorageAvailability)]
#[availability(kind = "not a name")]
struct Other {
    #[storage(validate = check)]
    csv: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {}
