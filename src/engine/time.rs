//! The engine's clock: a point in time given by the caller, never read
//! from the system. `sta-peerd` counts real time from its start; the
//! simulator counts virtual time, so the same engine runs in both.

use std::ops::{Add, AddAssign};
use std::time::Duration;

/// Microseconds since an epoch the caller chose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    pub const ZERO: Time = Time(0);

    pub fn from_micros(us: u64) -> Time {
        Time(us)
    }

    pub fn from_duration(d: Duration) -> Time {
        Time(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn as_micros(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Time elapsed since `earlier`; zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(Time::from_duration(d).0))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Time::from_micros(5) + Duration::from_micros(10);
        assert_eq!(t.as_micros(), 15);
        assert_eq!(Time::ZERO.since(t), Duration::ZERO);
        assert_eq!(t.since(Time::ZERO), Duration::from_micros(15));
        assert_eq!(
            (Time::from_micros(u64::MAX) + Duration::from_secs(1)).as_micros(),
            u64::MAX
        );
    }
}
