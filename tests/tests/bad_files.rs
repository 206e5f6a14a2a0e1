//! A corpus of bad cache files (issue 5). For each: no panic, no hang, correct statuses, and
//! the file quarantined (does not parse), replaced (another version, unreadable) or read (a
//! compatible file), as RELIABILITY.md says. What is not a regular file (a directory, a FIFO, a
//! symlink to a device) is never moved or deleted, and the cache runs in memory.
//!
//! Through the blocking driver (`open`, `refresh`); `bad_files_async.rs` runs the same suite
//! through the tokio driver.

mod driver {
    use storage_availability::{
        AvailabilityCache, AvailabilityCacheBuilder, BlockingValidators, Error, RefreshReport,
    };

    pub(crate) fn open<C: BlockingValidators>(
        builder: AvailabilityCacheBuilder<C>,
    ) -> Result<AvailabilityCache<C>, Error> {
        builder.open()
    }

    pub(crate) fn refresh<C: BlockingValidators>(
        cache: &AvailabilityCache<C>,
    ) -> Result<RefreshReport, Error> {
        cache.refresh()
    }
}

include!("suite/bad_files.rs");
