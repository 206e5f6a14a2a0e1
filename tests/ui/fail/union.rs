use storage_availability::StorageAvailability;

#[derive(StorageAvailability)]
union Config {
    csv: u32,
}

fn main() {}
