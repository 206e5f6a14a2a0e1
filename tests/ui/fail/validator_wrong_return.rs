use storage_availability::StorageAvailability;

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check_csv)]
    csv: u32,
    #[storage(validate = check_kv)]
    kv: u32,
}

fn check_csv(_: &u32) -> bool {
    true
}

struct NotDisplay;

fn check_kv(_: &u32) -> Result<(), NotDisplay> {
    Err(NotDisplay)
}

fn main() {}
