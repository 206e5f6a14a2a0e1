//! The validator runner of `open_async`: async validators run concurrently as tasks, each
//! under `tokio::time::timeout` (cancelled past it); blocking validators run on
//! `spawn_blocking` (abandoned past their timeout, their late result dropped). A panic in
//! either makes only its own section unavailable. At most `max_parallel` run at once.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::section::{Outcome, StorageAvailability};
use crate::validate::{
    Ending, Finished, fill_missing, panicked_outcome, timed_out_outcome as timed_out,
};

/// Validates `jobs` concurrently; one result per job, in the order given. Dropping the
/// returned future aborts the async validators still running.
pub(crate) async fn run<C: StorageAvailability>(
    config: &Arc<C>,
    context: &Arc<C::Context>,
    jobs: &[(C::Kind, Duration)],
    max_parallel: usize,
) -> Vec<Finished<C::Kind>> {
    let permits = Arc::new(Semaphore::new(max_parallel.max(1)));
    let mut tasks = JoinSet::new();
    let mut index_of = HashMap::new();
    for (index, &(kind, timeout)) in jobs.iter().enumerate() {
        let config = Arc::clone(config);
        let context = Arc::clone(context);
        let permits = Arc::clone(&permits);
        let handle = tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.ok();
            let started = Instant::now();
            let (outcome, ending) = match config.validate_async_with(kind, &context) {
                Some(future) => match tokio::time::timeout(timeout, future).await {
                    Ok(outcome) => (outcome, Ending::Completed),
                    Err(_) => (timed_out(timeout), Ending::TimedOut),
                },
                None => {
                    run_blocking(Arc::clone(&config), Arc::clone(&context), kind, timeout).await
                }
            };
            let elapsed = started.elapsed();
            // A validator that blocked its thread past the timeout gave tokio's timer no
            // chance to fire: its result came late all the same, so it is a timeout.
            let (outcome, ending) = if ending != Ending::TimedOut && elapsed > timeout {
                (timed_out(timeout), Ending::TimedOut)
            } else {
                (outcome, ending)
            };
            (index, outcome, ending, elapsed)
        });
        index_of.insert(handle.id(), index);
    }

    let mut results: Vec<Option<Finished<C::Kind>>> = jobs.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, outcome, ending, duration)) => {
                results[index] = Some(Finished {
                    kind: jobs[index].0,
                    outcome,
                    duration,
                    ending,
                });
            }
            Err(error) => {
                let Some(&index) = index_of.get(&error.id()) else {
                    continue;
                };
                let outcome = if error.is_panic() {
                    panicked_outcome(&*error.into_panic())
                } else {
                    Outcome::failed("validation was cancelled")
                };
                results[index] = Some(Finished {
                    kind: jobs[index].0,
                    outcome,
                    duration: Duration::ZERO,
                    ending: Ending::Panicked,
                });
            }
        }
    }
    fill_missing(results, jobs)
}

async fn run_blocking<C: StorageAvailability>(
    config: Arc<C>,
    context: Arc<C::Context>,
    kind: C::Kind,
    timeout: Duration,
) -> (Outcome, Ending) {
    let handle = tokio::task::spawn_blocking(move || {
        catch_unwind(AssertUnwindSafe(|| config.validate_with(kind, &context)))
    });
    match tokio::time::timeout(timeout, handle).await {
        Ok(Ok(Ok(outcome))) => (outcome, Ending::Completed),
        Ok(Ok(Err(payload))) => (panicked_outcome(&*payload), Ending::Panicked),
        Ok(Err(error)) => (
            Outcome::failed(format!("validator did not run: {error}")),
            Ending::Panicked,
        ),
        // Abandoned: the thread finishes on its own and its result is dropped.
        Err(_) => (timed_out(timeout), Ending::TimedOut),
    }
}
