use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check_kv, async)]
    kv: String,
}

// Marked `async` in the attribute, but a blocking fn: its result is not a future.
fn check_kv(_: &String) -> Outcome {
    Outcome::ok()
}

fn main() {}
