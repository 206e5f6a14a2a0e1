use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};

struct AppContext;

#[derive(serde::Serialize, StorageAvailability)]
#[availability(context = AppContext)]
struct Config {
    #[storage(validate = check)]
    kv: String,
}

fn check(_: &String, _: &AppContext) -> Outcome {
    Outcome::ok()
}

fn main() {
    let _ = AvailabilityCache::builder(Config { kv: String::new() }).open();
}
