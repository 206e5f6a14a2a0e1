use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = ping_kv, async)]
    kv: String,
}

async fn ping_kv(_: &u16) -> Outcome {
    Outcome::ok()
}

fn main() {}
