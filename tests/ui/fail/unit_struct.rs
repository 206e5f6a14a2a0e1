use storage_availability::StorageAvailability;

#[derive(serde::Serialize, StorageAvailability)]
struct Config;

fn main() {}
