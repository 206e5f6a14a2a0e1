use storage_availability::{Outcome, StorageAvailability};

struct AppContext;

#[derive(serde::Serialize, StorageAvailability)]
#[availability(context = AppContext)]
struct Config {
    #[storage(validate = check)]
    kv: String,
    #[storage(validate = no_context)]
    csv: String,
}

fn check(_: &String, _: &u32) -> Outcome {
    Outcome::ok()
}

fn no_context(_: &String) -> Outcome {
    Outcome::ok()
}

fn main() {}
