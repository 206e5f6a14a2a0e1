//! The generated code passes `#![deny(warnings)]` and `#![deny(missing_docs)]` (and the
//! stricter rustc lint groups) in the user's crate.

#![deny(warnings)]
#![deny(missing_docs)]
#![deny(rust_2018_idioms, unused_qualifications, unreachable_pub, unused_results)]
#![deny(missing_debug_implementations, trivial_casts, trivial_numeric_casts)]

/// The application's storage.
pub mod storage {
    use storage_availability::{Outcome, StorageAvailability};

    /// The config.
    #[derive(Debug, serde::Serialize, StorageAvailability)]
    pub struct StorageConfig {
        /// CSV files.
        #[storage(validate = check_csv, timeout_ms = 10, version = 3)]
        pub csv: u32,
        /// Vector store.
        #[storage(validate = check_vector, scope = "shared")]
        pub vector: Option<u64>,
    }

    fn check_csv(_: &u32) -> Outcome {
        Outcome::ok()
    }

    fn check_vector(_: &u64) -> Result<(), String> {
        Ok(())
    }
}

fn main() {
    use storage_availability::StorageAvailability;
    let config = storage::StorageConfig { csv: 1, vector: None };
    assert!(config.validate(storage::StorageConfigKind::Csv).is_ok());
    assert!(!config.is_configured(storage::StorageConfigKind::Vector));
}
