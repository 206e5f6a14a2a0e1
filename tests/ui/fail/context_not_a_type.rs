use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
#[availability(context = "AppContext")]
struct Config {
    #[storage(validate = check)]
    kv: String,
}

fn check(_: &String) -> Outcome {
    Outcome::ok()
}

fn main() {}
