//! The kind enum has the struct's visibility.

mod config {
    use storage_availability::{Outcome, StorageAvailability};

    #[derive(serde::Serialize, StorageAvailability)]
    pub(crate) struct Config {
        #[storage(validate = check)]
        pub(crate) csv: u32,
    }

    fn check(_: &u32) -> Outcome {
        Outcome::ok()
    }
}

use storage_availability::{StorageAvailability, StorageKind};

fn main() {
    let config = config::Config { csv: 1 };
    let kind: config::ConfigKind = config::ConfigKind::Csv;
    assert!(config.validate(kind).is_ok());
    assert_eq!(kind.name(), "csv");
}
