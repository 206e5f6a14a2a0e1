use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = ping_kv)]
    kv: String,
}

// An async fn without the `async` flag: its future is not an `Outcome`.
async fn ping_kv(_: &String) -> Outcome {
    Outcome::ok()
}

fn main() {}
