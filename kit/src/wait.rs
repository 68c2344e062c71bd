//! Waiting for what no event announces (a file appearing, another
//! process's state changing): poll, with a deadline, so that a broken
//! daemon fails a test or a benchmark instead of hanging it.

use std::thread;
use std::time::{Duration, Instant};

/// Calls `check` every `every` until it returns `Some` (that value), or
/// until `timeout` has passed (`None`). `check` runs at least once.
pub fn poll_until<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(every.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_until_some_or_timeout() {
        let mut n = 0;
        let got = poll_until(Duration::from_secs(10), Duration::from_millis(1), || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(got, Some(3));
        let never = poll_until(Duration::from_millis(20), Duration::from_millis(5), || {
            None::<()>
        });
        assert_eq!(never, None);
    }
}
