//! The validator runner: stale sections in parallel, each with a timeout, panics isolated.
//!
//! Each validation runs on its own thread, at most `max_parallel` at a time. A validator
//! that overruns its timeout is abandoned: its section is reported as timed out, its thread
//! no longer counts against the limit, and its late result is dropped: a result that comes
//! back after its deadline, even one the loop receives before it noticed the deadline, is a
//! timeout. Threads, not a pool, because an abandoned validator must not
//! hold a worker that later sections need.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::section::{Outcome, StorageAvailability, StorageKind};

/// How a validation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Completed,
    TimedOut,
    Panicked,
}

/// The result of one section's validation.
#[derive(Debug)]
pub(crate) struct Finished<K> {
    pub(crate) kind: K,
    pub(crate) outcome: Outcome,
    pub(crate) duration: Duration,
    pub(crate) ending: Ending,
}

/// Validates `jobs` (a section and its timeout each) and returns one result per job, in the
/// order the jobs were given.
pub(crate) fn run<C: StorageAvailability>(
    config: &Arc<C>,
    context: &Arc<C::Context>,
    jobs: &[(C::Kind, Duration)],
    max_parallel: usize,
) -> Vec<Finished<C::Kind>> {
    let max_parallel = max_parallel.max(1);
    let (sender, receiver) = mpsc::channel::<Report>();
    let mut results: Vec<Option<Finished<C::Kind>>> = jobs.iter().map(|_| None).collect();
    let mut queue: VecDeque<usize> = (0..jobs.len()).collect();
    // Running jobs: (index, started, deadline).
    let mut running: Vec<(usize, Instant, Instant)> = Vec::new();

    while !queue.is_empty() || !running.is_empty() {
        while running.len() < max_parallel {
            let Some(index) = queue.pop_front() else {
                break;
            };
            let (kind, timeout) = jobs[index];
            let started = Instant::now();
            match spawn_validator(config, context, kind, index, sender.clone()) {
                Ok(()) => running.push((index, started, started + timeout)),
                Err(error) => {
                    results[index] = Some(Finished {
                        kind,
                        outcome: Outcome::failed(format!(
                            "could not start a thread for the validator: {error}"
                        )),
                        duration: Duration::ZERO,
                        ending: Ending::Completed,
                    });
                }
            }
        }
        let Some(next_deadline) = running.iter().map(|r| r.2).min() else {
            continue;
        };
        let wait = next_deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(wait) {
            Ok(report) => {
                // A result from a job already timed out is not in `running`: dropped.
                let index = report.index;
                if let Some(position) = running.iter().position(|r| r.0 == index) {
                    let (_, started, deadline) = running.swap_remove(position);
                    let (kind, timeout) = jobs[index];
                    results[index] = Some(if on_time(report.finished_at, deadline) {
                        Finished {
                            kind,
                            outcome: report.outcome,
                            duration: report.duration,
                            ending: report.ending,
                        }
                    } else {
                        timed_out(kind, timeout, report.finished_at - started)
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                let now = Instant::now();
                running.retain(|&(index, started, deadline)| {
                    if deadline > now {
                        return true;
                    }
                    let (kind, timeout) = jobs[index];
                    results[index] = Some(timed_out(kind, timeout, now - started));
                    false
                });
            }
        }
    }
    fill_missing(results, jobs)
}

/// What a validator thread sends back.
struct Report {
    index: usize,
    outcome: Outcome,
    duration: Duration,
    ending: Ending,
    /// When the validator returned: after the deadline, the result is a timeout.
    finished_at: Instant,
}

/// A result that came back by its deadline counts; a later one is a timeout.
pub(crate) fn on_time(finished_at: Instant, deadline: Instant) -> bool {
    finished_at <= deadline
}

fn timed_out<K>(kind: K, timeout: Duration, duration: Duration) -> Finished<K> {
    Finished {
        kind,
        outcome: timed_out_outcome(timeout),
        duration,
        ending: Ending::TimedOut,
    }
}

/// The one message of a validator abandoned (blocking) or cancelled (async) at its timeout.
pub(crate) fn timed_out_outcome(timeout: Duration) -> Outcome {
    Outcome::failed(format!(
        "validation timed out after {}",
        format_duration(timeout)
    ))
}

/// The one message of a validator that panicked, from the panic's payload.
pub(crate) fn panicked_outcome(payload: &(dyn std::any::Any + Send)) -> Outcome {
    Outcome::failed(format!("validator panicked: {}", panic_message(payload)))
}

/// One result per job: a job without one (which the runners rule out) is reported as a
/// failure rather than dropped or panicked on.
pub(crate) fn fill_missing<K: Copy>(
    results: Vec<Option<Finished<K>>>,
    jobs: &[(K, Duration)],
) -> Vec<Finished<K>> {
    results
        .into_iter()
        .zip(jobs)
        .map(|(result, &(kind, _))| {
            result.unwrap_or_else(|| Finished {
                kind,
                outcome: Outcome::failed("validation did not report a result"),
                duration: Duration::ZERO,
                ending: Ending::Completed,
            })
        })
        .collect()
}

fn spawn_validator<C: StorageAvailability>(
    config: &Arc<C>,
    context: &Arc<C::Context>,
    kind: C::Kind,
    index: usize,
    sender: mpsc::Sender<Report>,
) -> std::io::Result<()> {
    let config = Arc::clone(config);
    let context = Arc::clone(context);
    std::thread::Builder::new()
        .name(format!("availability-{}", kind.name()))
        .spawn(move || {
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| config.validate_with(kind, &context)));
            let duration = started.elapsed();
            let (outcome, ending) = match result {
                Ok(outcome) => (outcome, Ending::Completed),
                Err(payload) => (panicked_outcome(&*payload), Ending::Panicked),
            };
            // The receiver is gone when the section already timed out: drop the result.
            let _ = sender.send(Report {
                index,
                outcome,
                duration,
                ending,
                finished_at: Instant::now(),
            });
        })
        .map(drop)
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_owned()
    }
}

/// `1.5s`, `250ms`: short and exact enough for messages.
pub(crate) fn format_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::{format_duration, on_time};
    use std::time::{Duration, Instant};

    #[test]
    fn a_result_after_the_deadline_is_late() {
        let deadline = Instant::now();
        assert!(on_time(deadline, deadline));
        assert!(on_time(deadline - Duration::from_millis(1), deadline));
        assert!(!on_time(deadline + Duration::from_millis(1), deadline));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.500s");
    }
}
