// The tokio driver of the shared suites (`open_async`, `refresh_async`, each call on a fresh
// current-thread runtime), included by their `_async` test targets.

mod driver {
    use storage_availability::{
        AvailabilityCache, AvailabilityCacheBuilder, Error, RefreshReport, StorageAvailability,
    };

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    }

    pub(crate) fn open<C: StorageAvailability<Context = ()>>(
        builder: AvailabilityCacheBuilder<C>,
    ) -> Result<AvailabilityCache<C>, Error> {
        runtime().block_on(builder.open_async())
    }

    pub(crate) fn refresh<C: StorageAvailability>(
        cache: &AvailabilityCache<C>,
    ) -> Result<RefreshReport, Error> {
        runtime().block_on(cache.refresh_async())
    }
}
