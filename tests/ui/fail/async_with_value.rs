use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = ping_kv, async = true)]
    kv: String,
}

async fn ping_kv(_: &String) -> Outcome {
    Outcome::ok()
}

fn main() {}
