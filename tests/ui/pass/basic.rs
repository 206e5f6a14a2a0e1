//! Option sections, `Result<(), String>` validators, and every key used.

use std::time::Duration;

use storage_availability::{Outcome, Scope, StorageAvailability, StorageKind};

#[derive(serde::Serialize)]
struct CsvConfig {
    dir: String,
}

#[derive(serde::Serialize)]
struct VectorConfig {
    url: String,
}

#[derive(serde::Serialize, StorageAvailability)]
struct StorageConfig {
    #[storage(validate = check_csv)]
    csv: CsvConfig,
    #[storage(validate = check_vector, timeout_ms = 2000, scope = "shared")]
    vector: Option<VectorConfig>,
    #[storage(validate = check_kv, name = "key_value", version = 2, scope = "host")]
    kv: std::option::Option<u16>,
    app_name: String,
}

fn check_csv(cfg: &CsvConfig) -> Outcome {
    if cfg.dir.is_empty() {
        Outcome::failed("no dir")
    } else {
        Outcome::ok().with_warning("almost full")
    }
}

fn check_vector(cfg: &VectorConfig) -> Result<(), String> {
    if cfg.url.starts_with("http") {
        Ok(())
    } else {
        Err(format!("bad url {}", cfg.url))
    }
}

fn check_kv(port: &u16) -> Result<(), std::io::Error> {
    if *port == 0 {
        Err(std::io::Error::other("port 0"))
    } else {
        Ok(())
    }
}

fn main() {
    let config = StorageConfig {
        csv: CsvConfig { dir: "data".into() },
        vector: Some(VectorConfig { url: "ftp://x".into() }),
        kv: None,
        app_name: "demo".into(),
    };
    assert_eq!(
        StorageConfigKind::ALL,
        [StorageConfigKind::Csv, StorageConfigKind::Vector, StorageConfigKind::Kv]
    );
    assert_eq!(StorageConfigKind::Kv.to_string(), "key_value");
    assert_eq!("vector".parse(), Ok(StorageConfigKind::Vector));

    let csv = config.validate(StorageConfigKind::Csv);
    assert!(csv.is_ok());
    assert_eq!(csv.warnings(), ["almost full"]);
    assert_eq!(
        config.validate(StorageConfigKind::Vector).last_error(),
        Some("bad url ftp://x")
    );
    assert!(config.is_configured(StorageConfigKind::Vector));
    assert!(!config.is_configured(StorageConfigKind::Kv));

    assert_eq!(StorageConfig::timeout(StorageConfigKind::Vector), Some(Duration::from_secs(2)));
    assert_eq!(StorageConfig::timeout(StorageConfigKind::Csv), None);
    assert_eq!(StorageConfig::version(StorageConfigKind::Kv), 2);
    assert_eq!(StorageConfig::scope(StorageConfigKind::Vector), Scope::Shared);
    assert_eq!(StorageConfig::scope(StorageConfigKind::Kv), Scope::Host);
    assert_eq!(config.section_key(StorageConfigKind::Csv).len(), 64);
    let _ = config.app_name;
}
