use storage_availability::{Outcome, StorageAvailability};

// `kv` takes its name from the field; the next two ask for the same name.
#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check)]
    kv: u32,
    #[storage(validate = check, name = "kv")]
    key_value: u32,
}

// The name given first, the field name second: the error is on the second, the field.
#[derive(serde::Serialize, StorageAvailability)]
struct Other {
    #[storage(validate = check, name = "csv")]
    files: u32,
    #[storage(validate = check)]
    csv: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {}
