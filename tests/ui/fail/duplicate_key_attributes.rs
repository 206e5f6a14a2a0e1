use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check, key_with = digest, key_with = digest)]
    csv: u32,
    #[storage(validate = check, max_age_secs = 1, max_age_secs = 2)]
    kv: u32,
    #[storage(validate = check, cache = false, cache = false)]
    vector: u32,
    #[storage(validate = check, cwd = false)]
    #[storage(cwd = true)]
    json: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn digest(_: &u32) -> u64 {
    0
}

fn main() {}
