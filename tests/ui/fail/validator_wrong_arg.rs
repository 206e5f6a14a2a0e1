use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check_csv)]
    csv: u32,
    #[storage(validate = checks::check_vector)]
    vector: Option<String>,
}

fn check_csv(_: &String) -> Outcome {
    Outcome::ok()
}

mod checks {
    pub fn check_vector(_: &u64) -> storage_availability::Outcome {
        storage_availability::Outcome::ok()
    }
}

fn main() {}
