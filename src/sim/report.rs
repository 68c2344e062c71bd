//! Figures of a run: the lower bound on the time to spread a file, and
//! text parsing of sizes and rates for the command line.

/// The least time in which `n` leechers can all hold a file of `f` bytes:
/// the seed must send it once, the slowest leecher must receive it, and
/// the swarm must upload `n * f` bytes in all (Kumar and Ross, 2006).
/// Rates in bytes per second; `d_min` 0 for unlimited.
pub fn lower_bound(f: f64, u_seed: f64, d_min: f64, n: usize, sum_leecher_up: f64) -> f64 {
    let seed = f / u_seed;
    let down = if d_min > 0.0 { f / d_min } else { 0.0 };
    let swarm = n as f64 * f / (u_seed + sum_leecher_up);
    seed.max(down).max(swarm)
}

/// A size such as `64M`, `512K`, `1G` or `1000` (binary multiples, bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("'{text}': unknown size suffix")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 64M, 512K)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// A rate as `tc` writes it, in bits per second: `50mbit`, `1gbit`,
/// `800kbit`, `100bit` (decimal multiples), or bytes per second with
/// `bps` (`6mbps`, as `tc` means it). Returns bytes per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let units: [(&str, f64); 8] = [
        ("gbit", 1e9 / 8.0),
        ("mbit", 1e6 / 8.0),
        ("kbit", 1e3 / 8.0),
        ("bit", 1.0 / 8.0),
        ("gbps", 1e9),
        ("mbps", 1e6),
        ("kbps", 1e3),
        ("bps", 1.0),
    ];
    for (suffix, mult) in units {
        if let Some(num) = t.strip_suffix(suffix) {
            let n: f64 = num
                .parse()
                .map_err(|_| format!("'{text}' is not a rate (e.g. 50mbit)"))?;
            if !(n > 0.0 && n.is_finite()) {
                return Err(format!("'{text}': a rate must be positive"));
            }
            return Ok((n * mult).round().max(1.0) as u64);
        }
    }
    Err(format!(
        "'{text}': give a unit as tc does: 50mbit (bits/s) or 6mbps (bytes/s)"
    ))
}

/// A duration such as `5ms`, `2s`, `150us`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!("'{text}': give a unit (us, ms, s)"));
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 5ms)"))?;
    if !(n >= 0.0 && n.is_finite()) {
        return Err(format!("'{text}': a duration must not be negative"));
    }
    Ok(std::time::Duration::from_secs_f64(n * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tc_rates_as_bits() {
        assert_eq!(parse_rate("50mbit"), Ok(6_250_000));
        assert_eq!(parse_rate("1Gbit"), Ok(125_000_000));
        assert_eq!(parse_rate("6mbps"), Ok(6_000_000));
        assert!(parse_rate("50").is_err());
        assert!(parse_rate("-1mbit").is_err());
    }

    #[test]
    fn parses_sizes_and_durations() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("7"), Ok(7));
        assert!(parse_size("3X").is_err());
        assert_eq!(
            parse_duration("5ms"),
            Ok(std::time::Duration::from_millis(5))
        );
        assert_eq!(parse_duration("2s"), Ok(std::time::Duration::from_secs(2)));
        assert!(parse_duration("5").is_err());
    }

    #[test]
    fn bound_takes_the_tightest_limit() {
        // 8 MiB, seed 1 MB/s: the seed's own upload is the limit.
        assert_eq!(lower_bound(8e6, 1e6, 0.0, 1, 0.0), 8.0);
        // Slow downloads dominate.
        assert_eq!(lower_bound(8e6, 1e6, 0.5e6, 1, 0.0), 16.0);
        // Many leechers that upload little: the swarm's total upload.
        assert_eq!(lower_bound(1e6, 1e6, 0.0, 100, 9e6), 10.0);
    }
}
