//! The tokio driver (feature `tokio`): every file step, lock wait and fleet round trip on
//! `spawn_blocking`, so no runtime worker blocks on them; validators on the runtime.
//!
//! Cancellation safety: the in-process gate and the file lock are guards, released when the
//! future is dropped; a save already handed to a blocking thread finishes there, holding the
//! lock until it is done, and the atomic write never leaves a partial file or a temp file.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use crate::refresh::{Core, Decision, Done, Io, Refresh, RefreshRun};
use crate::section::StorageAvailability;
use crate::store::{CacheStore, LockOutcome, StoreRead};
use crate::validate_async;

/// Runs one refresh of `core` to its end.
pub(crate) async fn refresh<C: StorageAvailability>(core: &Core<C>, run: &RefreshRun) -> Done {
    let started = Instant::now();
    let now = || core.options.clock.now();
    let (mut refresh, mut decision) = Refresh::start(core, run, now());
    loop {
        let io = match decision {
            Decision::Perform(io) => io,
            Decision::Done(done) => return done,
        };
        decision = match io {
            Io::Load { store, max_bytes } => {
                let loaded = blocking(store, move |s| s.load(max_bytes)).await;
                refresh.loaded(loaded.unwrap_or(StoreRead::Missing), now())
            }
            Io::Lock { store, timeout } => {
                let outcome = blocking(store, move |s| s.lock(timeout)).await;
                let failed = || LockOutcome::Unavailable("the lock task failed".into());
                refresh.locked(outcome.unwrap_or_else(failed), now())
            }
            Io::Reload { store, max_bytes } => {
                let read = blocking(store, move |s| (s.load(max_bytes), s.sweep())).await;
                let (loaded, swept) = read.unwrap_or((StoreRead::Missing, 0));
                refresh.reloaded(loaded, swept, now())
            }
            Io::Quarantine { store } => {
                let at = now();
                let result = blocking(store, move |s| s.quarantine(at)).await;
                let failed = || Err(io::Error::other("the quarantine task failed"));
                refresh.quarantined(result.unwrap_or_else(failed), now())
            }
            Io::AskFleet(request) => {
                let claim = tokio::task::spawn_blocking(move || (*request).claim()).await;
                refresh.fleet_claimed(claim.ok(), now())
            }
            Io::Validate {
                config,
                context,
                jobs,
                max_parallel,
            } => {
                let finished = validate_async::run(&config, &context, &jobs, max_parallel).await;
                refresh.validated(finished, now(), started.elapsed())
            }
            Io::Settle(mut claim) => {
                let settled = tokio::task::spawn_blocking(move || {
                    let more = claim.settle();
                    (claim, more)
                });
                refresh.settled(settled.await.ok(), now())
            }
            Io::Save {
                store,
                mut file,
                lock,
                config_path,
            } => {
                // The lock is dropped on the blocking thread, after the save, even if this
                // future is dropped meanwhile.
                let saved = blocking(store, move |s| {
                    let result = super::save(s, &mut file, config_path.as_deref());
                    drop(lock);
                    result
                });
                let failed = || Err(io::Error::other("the save task failed"));
                refresh.saved(saved.await.unwrap_or_else(failed), now())
            }
        };
    }
}

/// Runs `f` on a blocking thread with the store; `None` if the task could not finish
/// (the runtime is shutting down, or `f` panicked).
async fn blocking<R, F>(store: Arc<dyn CacheStore>, f: F) -> Option<R>
where
    R: Send + 'static,
    F: FnOnce(&dyn CacheStore) -> R + Send + 'static,
{
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .ok()
}

/// The async paths need a tokio runtime (for `spawn_blocking` and timers): polled from
/// another executor, they answer with a typed error instead of tokio's panic.
pub(crate) fn require_runtime(operation: &'static str) -> Result<(), crate::Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(crate::Error::NoAsyncRuntime { operation }),
    }
}
