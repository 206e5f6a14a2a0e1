use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize)]
struct Db {
    url: String,
}

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    // `Db` has no `Deref` target for `deref` to pass.
    #[storage(validate = check_db, deref)]
    db: Db,
}

fn check_db(_: &Db) -> Outcome {
    Outcome::ok()
}

fn main() {}
