//! Time as the core sees it: passed in, never read.
//!
//! Every call into a state machine carries a [`Now`]. `mono` drives timers and only ever moves
//! forward; `wall_micros` stamps new entries and bounds how far in the future a remote entry may
//! be. Keeping both outside the core is what lets the simulator replay a run exactly.

use std::{fmt, ops::Add, time::Duration};

/// A point on a monotonic clock, in microseconds since an arbitrary origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(pub u64);

impl Mono {
    /// Microseconds since the origin.
    pub fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Mono) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Mono {
    type Output = Mono;
    fn add(self, d: Duration) -> Mono {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Mono(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Mono {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// The current time, as handed to the core by its runtime or simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Monotonic time, for timers.
    pub mono: Mono,
    /// Wall-clock time in microseconds since the UNIX epoch, for entry timestamps.
    pub wall_micros: u64,
}

impl Now {
    /// A `Now` from its two parts.
    pub fn new(mono: Mono, wall_micros: u64) -> Self {
        Self { mono, wall_micros }
    }
}
