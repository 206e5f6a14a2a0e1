use storage_availability::StorageAvailability;

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(name = "csv_files", timeout_ms = 100)]
    csv: u32,
}

fn main() {
    let _ = ConfigKind::Csv;
}
