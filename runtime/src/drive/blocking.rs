//! The blocking driver: every step on the caller's thread.

use std::time::Instant;

use crate::refresh::{Core, Decision, Done, Io, Refresh, RefreshRun};
use crate::section::StorageAvailability;
use crate::validate;

/// Runs one refresh of `core` to its end.
pub(crate) fn refresh<C: StorageAvailability>(core: &Core<C>, run: &RefreshRun) -> Done {
    let started = Instant::now();
    let now = || core.options.clock.now();
    let (mut refresh, mut decision) = Refresh::start(core, run, now());
    loop {
        let io = match decision {
            Decision::Perform(io) => io,
            Decision::Done(done) => return done,
        };
        decision = match io {
            Io::Load { store, max_bytes } => refresh.loaded(store.load(max_bytes), now()),
            Io::Lock { store, timeout } => refresh.locked(store.lock(timeout), now()),
            Io::Reload { store, max_bytes } => {
                let loaded = store.load(max_bytes);
                refresh.reloaded(loaded, store.sweep(), now())
            }
            Io::Quarantine { store } => refresh.quarantined(store.quarantine(now()), now()),
            Io::AskFleet(request) => refresh.fleet_claimed(Some((*request).claim()), now()),
            Io::Validate {
                config,
                context,
                jobs,
                max_parallel,
            } => {
                let finished = validate::run(&config, &context, &jobs, max_parallel);
                refresh.validated(finished, now(), started.elapsed())
            }
            Io::Settle(mut claim) => {
                let more = claim.settle();
                refresh.settled(Some((claim, more)), now())
            }
            Io::Save {
                store,
                mut file,
                lock,
                config_path,
            } => {
                let result = super::save(store.as_ref(), &mut file, config_path.as_deref());
                drop(lock);
                refresh.saved(result, now())
            }
        };
    }
}
