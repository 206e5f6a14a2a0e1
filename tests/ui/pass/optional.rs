//! `#[storage(optional)]` (flag and `= bool` forms) and the kind enum's `Serialize`.

use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check)]
    csv: u32,
    #[storage(validate = check, optional, name = "key_value")]
    kv: Option<u32>,
    #[storage(validate = check, optional = true)]
    search: u32,
    #[storage(validate = check, optional = false)]
    vector: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {
    assert!(!Config::is_optional(ConfigKind::Csv));
    assert!(Config::is_optional(ConfigKind::Kv));
    assert!(Config::is_optional(ConfigKind::Search));
    assert!(!Config::is_optional(ConfigKind::Vector));
    assert_eq!(serde_json::to_string(&ConfigKind::Kv).unwrap(), r#""key_value""#);
    assert_eq!(
        serde_json::to_string(ConfigKind::ALL).unwrap(),
        r#"["csv","key_value","search","vector"]"#
    );
}
