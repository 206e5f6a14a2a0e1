//! A generic config: the impl carries the struct's generics and where clause, and adds the
//! bounds the trait needs. The kind enum is not generic.

use std::fmt::Display;

use storage_availability::{Outcome, StorageAvailability, StorageKind};

#[derive(serde::Serialize, StorageAvailability)]
struct Config<T: Display, U>
where
    U: Clone,
{
    #[storage(validate = check_display)]
    csv: T,
    #[storage(validate = check_any::<U>)]
    kv: Option<U>,
    #[storage(validate = check_list)]
    list: Vec<T>,
}

fn check_display<T: Display>(value: &T) -> Outcome {
    if value.to_string().is_empty() {
        Outcome::failed("empty")
    } else {
        Outcome::ok()
    }
}

fn check_any<U>(_: &U) -> Result<(), String> {
    Ok(())
}

fn check_list<T>(list: &Vec<T>) -> Result<(), &'static str> {
    if list.is_empty() { Err("empty list") } else { Ok(()) }
}

fn keys<C: StorageAvailability>(config: &C) -> Vec<String> {
    C::Kind::ALL.iter().map(|k| config.section_key(*k).to_string()).collect()
}

fn main() {
    let config: Config<String, u8> = Config { csv: "x".to_owned(), kv: Some(1), list: vec![] };
    assert!(config.validate(ConfigKind::Csv).is_ok());
    assert!(config.validate(ConfigKind::Kv).is_ok());
    assert_eq!(config.validate(ConfigKind::List).last_error(), Some("empty list"));
    assert_eq!(keys(&config).len(), 3);

    let other: Config<u64, bool> = Config { csv: 7, kv: None, list: vec![1] };
    assert!(!other.is_configured(ConfigKind::Kv));
    assert!(other.validate(ConfigKind::List).is_ok());
}
