//! Raw identifiers: the name and the variant drop `r#`.

use storage_availability::{Outcome, StorageAvailability, StorageKind};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check)]
    r#type: u32,
    #[storage(validate = check, name = "matches")]
    r#match: u32,
}

fn check(_: &u32) -> Outcome {
    Outcome::ok()
}

fn main() {
    assert_eq!(ConfigKind::ALL, [ConfigKind::Type, ConfigKind::Match]);
    assert_eq!(ConfigKind::Type.name(), "type");
    assert_eq!(ConfigKind::from_name("matches"), Some(ConfigKind::Match));
    let config = Config { r#type: 1, r#match: 2 };
    assert!(config.validate(ConfigKind::Type).is_ok());
    assert_eq!(
        config.section_key(ConfigKind::Type),
        storage_availability::section_key(
            &storage_availability::SectionSpec::new(concat!(module_path!(), "::Config"), "type"),
            &storage_availability::KeyContext::new(env!("CARGO_PKG_VERSION")),
            Some(&1u32),
        )
        .unwrap()
    );
}
