use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check_csv)]
    csv: String,
    #[storage(validate = ping_kv, async)]
    kv: String,
}

fn check_csv(_: &String) -> Outcome {
    Outcome::ok()
}

async fn ping_kv(_: &String) -> Outcome {
    Outcome::ok()
}

fn main() {
    let config = Config { csv: "data".into(), kv: "localhost:6379".into() };
    // A config with an async validator has no blocking `open`: use `open_async`.
    let _ = AvailabilityCache::open(config, "storage.yaml");
}
