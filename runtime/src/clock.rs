//! The time source, injectable so expiry and backoff can be tested without sleeping.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Where the cache reads the current time from.
///
/// Only expiry decisions and timestamps use it; timeouts use the monotonic clock.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use storage_availability::Clock;
///
/// /// A clock an hour ahead of the system's.
/// #[derive(Debug)]
/// struct Ahead;
/// impl Clock for Ahead {
///     fn now(&self) -> SystemTime { SystemTime::now() + Duration::from_secs(3600) }
/// }
/// assert!(Ahead.now() > SystemTime::now());
/// ```
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The real clock: [`SystemTime::now`].
///
/// ```
/// use storage_availability::{Clock, SystemClock};
/// assert!(SystemClock.now() <= std::time::SystemTime::now());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to: for tests of expiry and backoff.
///
/// Clones share the same time, so a test keeps one handle and gives another to the cache.
///
/// # Example
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use storage_availability::{Clock, ManualClock};
///
/// let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
/// let handle = clock.clone();
/// handle.advance(Duration::from_secs(60));
/// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(1_060));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use storage_availability::{Clock, ManualClock};
    /// let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
    /// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH);
    /// ```
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward by `by`.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use storage_availability::{Clock, ManualClock};
    /// let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
    /// clock.advance(Duration::from_secs(30));
    /// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(30));
    /// ```
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock to `to` (which may be earlier than now).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use storage_availability::{Clock, ManualClock};
    /// let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(60));
    /// clock.set(SystemTime::UNIX_EPOCH); // back in time
    /// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH);
    /// ```
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new(SystemTime::now())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
