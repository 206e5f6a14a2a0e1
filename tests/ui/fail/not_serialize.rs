use storage_availability::{Outcome, StorageAvailability};

struct CsvConfig {
    dir: String,
}

#[derive(StorageAvailability)]
struct Config {
    #[storage(validate = check)]
    csv: CsvConfig,
}

fn check(csv: &CsvConfig) -> Outcome {
    if csv.dir.is_empty() { Outcome::failed("empty") } else { Outcome::ok() }
}

fn main() {}
