//! Time for the client: the request budget, retry backoff and token expiry all read a
//! [`Clock`], so tests can run them on injected time instead of sleeping.

use parking_lot::Mutex;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;

/// A monotonic clock with a wall-clock anchor and a way to sleep.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Monotonic time since the clock's origin.
    fn now(&self) -> Duration;
    /// Wall-clock time (origin wall time plus `now()`).
    fn wall(&self) -> SystemTime;
    /// Waits `d`.
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock: `Instant` plus Tokio's timer.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
    wall_origin: SystemTime,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            wall_origin: SystemTime::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn wall(&self) -> SystemTime {
        self.wall_origin + self.origin.elapsed()
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Injected time for tests: `sleep` advances the clock at once and records the duration.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Duration>,
    wall_origin: SystemTime,
    sleeps: Mutex<Vec<Duration>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            now: Mutex::new(Duration::ZERO),
            wall_origin: SystemTime::now(),
            sleeps: Mutex::new(Vec::new()),
        }
    }
}

impl ManualClock {
    /// Moves time forward.
    pub fn advance(&self, d: Duration) {
        *self.now.lock() += d;
    }

    /// Every sleep asked for so far.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().clone()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.lock()
    }
    fn wall(&self) -> SystemTime {
        self.wall_origin + self.now()
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        self.sleeps.lock().push(d);
        self.advance(d);
        Box::pin(tokio::task::yield_now())
    }
}
