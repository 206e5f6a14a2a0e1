//! In-process single-flight: at most one refresh of a cache runs at a time, whether it was
//! started from a thread or from an async task. Waiters then find the work done.
//!
//! A `Mutex<bool>` + `Condvar` for threads, and (with the `tokio` feature) a `Notify` for
//! tasks, so an async waiter never blocks a runtime worker.

use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Debug, Default)]
pub(crate) struct Gate {
    busy: Mutex<bool>,
    released: Condvar,
    #[cfg(feature = "tokio")]
    notify: tokio::sync::Notify,
}

/// Proof of having entered the gate; leaves it on drop (also when a future is dropped).
#[derive(Debug)]
pub(crate) struct GateGuard<'a>(&'a Gate);

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.0.released.notify_all();
        #[cfg(feature = "tokio")]
        self.0.notify.notify_waiters();
    }
}

impl Gate {
    /// Waits (blocking the thread) until the gate is free, then enters it.
    pub(crate) fn enter(&self) -> GateGuard<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy {
            busy = self
                .released
                .wait(busy)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *busy = true;
        GateGuard(self)
    }

    #[cfg(any(test, feature = "tokio"))]
    fn try_enter(&self) -> Option<GateGuard<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        if *busy {
            None
        } else {
            *busy = true;
            Some(GateGuard(self))
        }
    }

    /// Waits (yielding to the runtime) until the gate is free, then enters it.
    #[cfg(feature = "tokio")]
    pub(crate) async fn enter_async(&self) -> GateGuard<'_> {
        loop {
            // Register interest before looking, so a release in between is not missed.
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(guard) = self.try_enter() {
                return guard;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_at_a_time() {
        let gate = Arc::new(Gate::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, inside) = (Arc::clone(&gate), Arc::clone(&inside));
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let _guard = gate.enter();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(gate.try_enter().is_some());
    }
}
