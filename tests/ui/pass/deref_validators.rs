//! `#[storage(validate = path, deref)]`: validators take `&str`, `&Path`, `&[T]` (what the
//! section type dereferences to); without `deref`, generic validators and `&String`
//! validators compile as before.

#![deny(warnings)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check_name, deref)]
    name: String,
    #[storage(validate = check_dir, deref)]
    dir: PathBuf,
    #[storage(validate = check_items, deref)]
    items: Vec<u32>,
    #[storage(validate = check_name, deref, timeout_ms = 100)]
    alias: Option<String>,
    #[storage(validate = check_any)]
    port: u16,
    #[storage(validate = check_any)]
    host: String,
    #[storage(validate = check_owned)]
    owner: String,
    #[storage(validate = ping, async, deref)]
    url: String,
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() { Err("empty".into()) } else { Ok(()) }
}

fn check_dir(dir: &Path) -> Outcome {
    if dir.is_absolute() { Outcome::ok() } else { Outcome::failed("relative") }
}

fn check_items(items: &[u32]) -> Outcome {
    if items.is_empty() { Outcome::failed("empty") } else { Outcome::ok() }
}

fn check_any<T: Debug>(value: &T) -> Outcome {
    Outcome::failed(format!("{value:?}"))
}

#[allow(clippy::ptr_arg)]
fn check_owned(owner: &String) -> Outcome {
    Outcome::failed(owner.clone())
}

async fn ping(url: &str) -> Result<(), String> {
    if url.is_empty() { Err("empty".into()) } else { Ok(()) }
}

fn main() {
    let config = Config {
        name: "csv".into(),
        dir: PathBuf::from("/data"),
        items: vec![1],
        alias: None,
        port: 80,
        host: "db".into(),
        owner: "me".into(),
        url: "http://db".into(),
    };
    assert!(config.validate(ConfigKind::Name).is_ok());
    assert!(config.validate(ConfigKind::Dir).is_ok());
    assert!(config.validate(ConfigKind::Items).is_ok());
    assert!(!config.is_configured(ConfigKind::Alias));
    assert_eq!(config.validate(ConfigKind::Port).last_error(), Some("80"));
    assert_eq!(config.validate(ConfigKind::Host).last_error(), Some("\"db\""));
    assert_eq!(config.validate(ConfigKind::Owner).last_error(), Some("me"));
    assert!(Config::is_async(ConfigKind::Url));
}
