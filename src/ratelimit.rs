//! Rate limits of `sta-peerd`: a token bucket with no clock of its own
//! (every call takes `now`), and the units users write rates in.
//!
//! A [`Bucket`] holds up to `burst` bytes of credit and earns `rate` bytes
//! of it per second. Sending (or reading) `n` bytes spends `n`; with no
//! credit left the caller waits until [`Bucket::next_ready`]. Over any
//! interval of length `t` at most `burst + rate * t` bytes pass, and a
//! caller that always has bytes to move gets that much.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

const NANOS: u128 = 1_000_000_000;

/// A token bucket counting bytes.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Bytes per second; never 0 (no limit is no bucket).
    rate: u64,
    burst: u64,
    tokens: u64,
    /// Credit earned below one byte, in byte-nanoseconds (< 1e9).
    carry: u128,
    last: Instant,
}

impl Bucket {
    /// A full bucket earning `rate` bytes per second (at least 1), holding
    /// at most `burst` bytes (at least 1).
    pub fn new(rate: u64, burst: u64, now: Instant) -> Bucket {
        let burst = burst.max(1);
        Bucket {
            rate: rate.max(1),
            burst,
            tokens: burst,
            carry: 0,
            last: now,
        }
    }

    /// A bucket for `rate` with the burst [`default_burst`] gives.
    pub fn with_rate(rate: u64, now: Instant) -> Bucket {
        Bucket::new(rate, default_burst(rate), now)
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Changes the rate (and burst) from `now` on: credit earned until now
    /// counts at the old rate, and is cut to the new burst.
    pub fn set_rate(&mut self, now: Instant, rate: u64, burst: u64) {
        self.refill(now);
        self.rate = rate.max(1);
        self.burst = burst.max(1);
        if self.tokens >= self.burst {
            self.tokens = self.burst;
            self.carry = 0;
        }
    }

    fn refill(&mut self, now: Instant) {
        // A `now` earlier than the last one (callers' clocks are monotonic,
        // but two readings may come in either order) earns nothing.
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        if self.tokens >= self.burst {
            self.carry = 0;
            return;
        }
        let credit = elapsed.as_nanos() * u128::from(self.rate) + self.carry;
        let earned = credit / NANOS;
        let room = u128::from(self.burst - self.tokens);
        if earned >= room {
            self.tokens = self.burst;
            self.carry = 0;
        } else {
            // earned < room <= u64::MAX
            self.tokens += earned as u64;
            self.carry = credit % NANOS;
        }
    }

    /// Bytes that may pass now.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens
    }

    /// Spends `n` bytes that passed (at most what [`available`] said;
    /// more is clamped to zero credit).
    ///
    /// [`available`]: Bucket::available
    pub fn spend(&mut self, n: u64) {
        self.tokens = self.tokens.saturating_sub(n);
    }

    /// Asks to move `n` bytes now: returns how many may pass (up to `n`)
    /// and spends them.
    pub fn take(&mut self, now: Instant, n: u64) -> u64 {
        let allowed = self.available(now).min(n);
        self.tokens -= allowed;
        allowed
    }

    /// How long from `now` until `want` bytes (at most the burst) may
    /// pass; zero if they may already.
    pub fn next_ready(&mut self, now: Instant, want: u64) -> Duration {
        self.refill(now);
        let want = want.clamp(1, self.burst);
        if self.tokens >= want {
            return Duration::ZERO;
        }
        let missing = u128::from(want - self.tokens) * NANOS - self.carry;
        let rate = u128::from(self.rate);
        let nanos = missing.div_ceil(rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// The burst of a bucket for `rate`: 50 ms of traffic, at least 128 KiB.
/// Credit left unused while the loop sleeps past its wake-up time is lost
/// beyond the burst, so the burst covers the loop's timer slack with room
/// to spare; 50 ms of extra bytes at the start is noise on any transfer
/// worth limiting.
pub fn default_burst(rate: u64) -> u64 {
    (rate / 20).max(128 * 1024)
}

/// The least credit worth waking up for with a bucket of `rate`: 5 ms of
/// traffic, from 4 KiB up to the burst. Waking for less would mean a
/// system call per few bytes.
pub fn quantum(rate: u64) -> u64 {
    (rate / 200).clamp(4 * 1024, default_burst(rate))
}

// ---------------------------------------------------------------------------
// Units

/// A rate in bytes per second; 0 means unlimited. Parsed from `50M`,
/// `1.5G`, `800k`, `2Mi`, `1000000`, `20MB/s`... (see [`parse_rate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rate(pub u64);

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        parse_rate(s).map(Rate)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_rate(self.0))
    }
}

/// Parses a rate in bytes per second: a number (decimals allowed) and an
/// optional unit, `k`/`M`/`G` (10^3, 10^6, 10^9) or `Ki`/`Mi`/`Gi` (2^10,
/// 2^20, 2^30), any case, optionally followed by `B` and/or `/s`. `0` is
/// unlimited. Bits are not accepted: `b` is read as bytes too, since
/// every rate here is in bytes.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let err = |why: &str| {
        format!(
            "rate {text:?}: {why}; give bytes per second (not bits), e.g. 50M, 1.5G, 800k, 2Mi or 1000000"
        )
    };
    let s = text.trim();
    let lower = s.to_ascii_lowercase();
    let mut rest = lower.as_str();
    rest = rest.strip_suffix("/s").unwrap_or(rest);
    rest = rest.strip_suffix('b').unwrap_or(rest);
    let (number, multiplier): (&str, u64) = if let Some(n) = rest.strip_suffix("ki") {
        (n, 1 << 10)
    } else if let Some(n) = rest.strip_suffix("mi") {
        (n, 1 << 20)
    } else if let Some(n) = rest.strip_suffix("gi") {
        (n, 1 << 30)
    } else if let Some(n) = rest.strip_suffix('k') {
        (n, 1_000)
    } else if let Some(n) = rest.strip_suffix('m') {
        (n, 1_000_000)
    } else if let Some(n) = rest.strip_suffix('g') {
        (n, 1_000_000_000)
    } else {
        (rest, 1)
    };
    let number = number.trim_end();
    if number.is_empty() {
        return Err(err("no number"));
    }
    if !number.chars().all(|c| c.is_ascii_digit() || c == '.') || number.matches('.').count() > 1 {
        return Err(err("not a number with an optional unit"));
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(err("no number"));
    }
    // Exact decimal arithmetic: whole * m + frac * m / 10^len(frac).
    let too_big = || err("too large");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let frac_digits = frac.get(..frac.len().min(18)).unwrap_or("");
    let frac_value: u128 = if frac_digits.is_empty() {
        0
    } else {
        frac_digits.parse().map_err(|_| err("bad decimals"))?
    };
    let scale = 10u128.pow(frac_digits.len() as u32);
    let m = u128::from(multiplier);
    let bytes = whole
        .checked_mul(m)
        .and_then(|w| w.checked_add(frac_value * m / scale))
        .ok_or_else(too_big)?;
    u64::try_from(bytes).map_err(|_| too_big())
}

/// A rate for people: `unlimited`, or decimal units with the exact number
/// of bytes when it is not round: `20 MB/s`, `1.5 MB/s (1500000 B/s)`.
pub fn format_rate(rate: u64) -> String {
    if rate == 0 {
        return "unlimited".to_owned();
    }
    for (unit, size) in [
        ("GB/s", 1_000_000_000u64),
        ("MB/s", 1_000_000),
        ("kB/s", 1_000),
    ] {
        if rate >= size {
            return if rate.is_multiple_of(size) {
                format!("{} {unit}", rate / size)
            } else {
                format!("{:.2} {unit} ({rate} B/s)", rate as f64 / size as f64)
            };
        }
    }
    format!("{rate} B/s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_bytes_decimal_or_binary() {
        let ok = |s: &str| parse_rate(s).unwrap();
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("1000000"), 1_000_000);
        assert_eq!(ok("50M"), 50_000_000);
        assert_eq!(ok("50m"), 50_000_000);
        assert_eq!(ok("1.5G"), 1_500_000_000);
        assert_eq!(ok("800k"), 800_000);
        assert_eq!(ok("800K"), 800_000);
        assert_eq!(ok("2Mi"), 2 << 20);
        assert_eq!(ok("2MiB"), 2 << 20);
        assert_eq!(ok("1ki"), 1024);
        assert_eq!(ok("1.5Gi"), 3 << 29);
        assert_eq!(ok("20MB/s"), 20_000_000);
        assert_eq!(ok("20mb/s"), 20_000_000);
        assert_eq!(ok("20M/s"), 20_000_000);
        assert_eq!(ok("100B"), 100);
        assert_eq!(ok(" 7 "), 7);
        assert_eq!(ok(".5k"), 500);
        assert_eq!(ok("0.001k"), 1);
        assert_eq!(ok("18446744073709551615"), u64::MAX);
        for bad in [
            "",
            "M",
            "-1M",
            "1..5M",
            "1.5.1M",
            "ten",
            "5T",
            "1e6",
            "1 M B x",
            ".",
            "18446744073709551616",
            "100000000000G",
        ] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("bytes per second"), "{bad}: {e}");
        }
        assert_eq!("50M".parse::<Rate>(), Ok(Rate(50_000_000)));
    }

    #[test]
    fn rates_print_for_people() {
        assert_eq!(format_rate(0), "unlimited");
        assert_eq!(format_rate(20_000_000), "20 MB/s");
        assert_eq!(format_rate(1_500_000), "1.50 MB/s (1500000 B/s)");
        assert_eq!(format_rate(800_000), "800 kB/s");
        assert_eq!(format_rate(999), "999 B/s");
    }

    /// Drives a bucket on a simulated clock: a sender that always has
    /// bytes sends whatever is allowed every `step`, for about `secs`
    /// seconds. Returns the bytes sent and the time simulated.
    fn simulate(rate: u64, step: Duration, secs: u64) -> (u64, Duration) {
        let t0 = Instant::now();
        let mut b = Bucket::with_rate(rate, t0);
        let mut sent = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(secs) {
            now += step;
            sent += b.take(now, u64::MAX);
        }
        (sent, now - t0)
    }

    #[test]
    fn long_run_rate_is_the_limit() {
        for rate in [1_000, 800_000, 20_000_000, 1_500_000_000] {
            for step in [Duration::from_micros(100), Duration::from_millis(3)] {
                let (sent, elapsed) = simulate(rate, step, 10);
                let earned = |d: Duration| (u128::from(rate) * d.as_nanos() / NANOS) as u64;
                let burst = default_burst(rate);
                // The initial burst, then exactly the rate: the first step
                // finds the bucket full, and integer credit is carried.
                let most = burst + earned(elapsed);
                let least = burst + earned(elapsed - step);
                assert!(sent <= most, "{rate} {step:?}: {sent} > {most}");
                assert!(sent >= least, "{rate} {step:?}: {sent} < {least}");
                let achieved = (sent - burst) as f64 / elapsed.as_secs_f64();
                let error = (achieved - rate as f64).abs() / rate as f64;
                assert!(error < 0.001, "{rate} {step:?}: {achieved}");
            }
        }
    }

    #[test]
    fn credit_is_capped_at_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, 500, t0);
        assert_eq!(b.take(t0, 10_000), 500);
        assert_eq!(b.take(t0, 10_000), 0);
        // An hour idle earns the burst, not an hour's worth.
        assert_eq!(b.available(t0 + Duration::from_secs(3600)), 500);
    }

    #[test]
    fn next_ready_says_when_credit_is_there() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1_000_000, 100_000, t0);
        assert_eq!(b.take(t0, u64::MAX), 100_000);
        let wait = b.next_ready(t0, 10_000);
        assert_eq!(wait, Duration::from_millis(10));
        assert_eq!(b.available(t0 + wait - Duration::from_nanos(1)), 9_999);
        assert_eq!(b.available(t0 + wait), 10_000);
        assert_eq!(b.next_ready(t0 + wait, 10_000), Duration::ZERO);
        // Asking for more than the burst waits for the burst only.
        let mut b = Bucket::new(1_000, 10, t0);
        b.take(t0, 10);
        assert_eq!(b.next_ready(t0, 1_000_000), Duration::from_millis(10));
    }

    #[test]
    fn fractional_credit_is_carried() {
        // 3 bytes per second, asked every 100 ms: 30 steps make 9 bytes.
        let t0 = Instant::now();
        let mut b = Bucket::new(3, 10, t0);
        b.take(t0, 10);
        let mut got = 0;
        for i in 1..=30 {
            got += b.take(t0 + Duration::from_millis(100 * i), u64::MAX);
        }
        assert_eq!(got, 9);
    }

    #[test]
    fn rate_changes_apply_from_now() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1_000, 1_000_000, t0);
        b.take(t0, u64::MAX);
        let t1 = t0 + Duration::from_secs(2);
        b.set_rate(t1, 10_000, 1_000_000);
        // 2 s at 1000 B/s, then 1 s at 10000 B/s.
        assert_eq!(b.available(t1 + Duration::from_secs(1)), 12_000);
        // A smaller burst cuts the credit held.
        b.set_rate(t1 + Duration::from_secs(1), 10_000, 500);
        assert_eq!(b.available(t1 + Duration::from_secs(1)), 500);
        assert_eq!(b.rate(), 10_000);
        assert_eq!(b.burst(), 500);
    }

    #[test]
    fn a_clock_read_out_of_order_earns_nothing() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let mut b = Bucket::new(1_000, 10_000, t0);
        b.take(t0, u64::MAX);
        assert_eq!(b.available(t1), 1_000);
        assert_eq!(b.available(t0), 1_000);
        assert_eq!(b.available(t1), 1_000);
    }
}
