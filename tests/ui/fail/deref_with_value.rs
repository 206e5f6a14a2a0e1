use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check_name, deref = true)]
    name: String,
}

fn check_name(_: &str) -> Outcome {
    Outcome::ok()
}

fn main() {
    // The fallback keeps the enum's inherent items: no follow-up error here.
    let _ = ConfigKind::ALL;
    let _ = ConfigKind::Name.name();
}
