// The blocking driver of the shared suites (`open`, `refresh`), included by their blocking
// test targets.

mod driver {
    use storage_availability::{
        AvailabilityCache, AvailabilityCacheBuilder, BlockingValidators, Error, RefreshReport,
    };

    pub(crate) fn open<C: BlockingValidators<Context = ()>>(
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
