use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check, timeout = 100)]
    csv: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {
    // The fallback keeps the enum and the impl: no follow-up errors here.
    let _ = Config::version(ConfigKind::Csv);
}
