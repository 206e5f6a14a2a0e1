//! The hooks of `metrics.rs` when the feature `metrics` is off: they do nothing and compile
//! to nothing, so the callers need no `cfg`.

use std::time::Duration;

use crate::stats::{Counters, RefreshReport};
use crate::validate::Ending;

#[inline(always)]
pub(crate) fn validated(_: &'static str, _: Duration, _: Ending, _: bool) {}

#[inline(always)]
pub(crate) fn published(
    _: impl Iterator<Item = (&'static str, bool)>,
    _: &RefreshReport,
    _: &Counters,
) {
}
