use storage_availability::StorageAvailability;

#[derive(StorageAvailability)]
enum Config {
    Csv(String),
}

fn main() {}
