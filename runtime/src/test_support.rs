//! Fixtures shared by the unit tests of several modules.

use std::fmt;

use crate::section::{StorageKind, UnknownKind};

/// The kind enum of a hand-written two-section config (`a`, `b`), for tests that implement
/// `StorageAvailability` by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum K {
    A,
    B,
}

impl fmt::Display for K {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for K {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        K::from_name(s).ok_or_else(|| UnknownKind::new(s, &["a", "b"]))
    }
}

impl StorageKind for K {
    const ALL: &'static [Self] = &[K::A, K::B];
    fn name(self) -> &'static str {
        match self {
            K::A => "a",
            K::B => "b",
        }
    }
    fn from_name(name: &str) -> Option<Self> {
        K::ALL.iter().copied().find(|k| k.name() == name)
    }
    fn index(self) -> usize {
        self as usize
    }
}
