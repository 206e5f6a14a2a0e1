use storage_availability::StorageAvailability;

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    csv: String,
    app_name: String,
}

fn main() {}
