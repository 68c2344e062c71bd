//! Per-address defences of a tracker on an open network: a ban list,
//! a cap on concurrent STA sessions per source address, and a request
//! rate per source address (a token bucket of requests). No clock of its
//! own: every rate decision takes `now` from the shell.

use crate::limits::MAX_RATE_TRACKED_ADDRESSES;
use crate::ratelimit::Bucket;
use crate::wire::tracker::ErrorCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// The operator's per-address limits; 0 turns a limit off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardConfig {
    /// Concurrent STA sessions from one address.
    pub max_sessions_per_ip: u32,
    /// Requests per second from one address (STA requests, BitTorrent
    /// UDP datagrams and HTTP requests together).
    pub requests_per_sec: u32,
    /// Requests one address may send at once after a quiet spell.
    pub request_burst: u32,
}

/// Why an address is refused: the STA error code and a message that also
/// serves as a BitTorrent `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

/// Addresses and networks refused outright, as read from `--ban-file`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BanList {
    /// Network address (host bits cleared) and prefix length, in the
    /// address's own family (IPv4-mapped IPv6 is compared as IPv4).
    nets: Vec<(IpAddr, u8)>,
}

impl BanList {
    /// One IP address or CIDR network a line; `#` starts a comment; blank
    /// lines are skipped. An error names the first bad line.
    pub fn parse(text: &str) -> Result<BanList, String> {
        let mut nets = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let net = parse_net(line).ok_or_else(|| {
                format!(
                    "line {}: `{line}` is not an IP address or CIDR network",
                    n + 1
                )
            })?;
            nets.push(net);
        }
        Ok(BanList { nets })
    }

    pub fn len(&self) -> usize {
        self.nets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets
            .iter()
            .any(|&(net, prefix)| masked(ip, prefix) == Some(net))
    }
}

fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let ip = addr.parse::<IpAddr>().ok()?.to_canonical();
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(bits);
    if prefix > bits {
        return None;
    }
    Some((masked(ip, prefix)?, prefix))
}

/// `ip` with all but its first `prefix` bits cleared.
fn masked(ip: IpAddr, prefix: u8) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            (prefix <= 32).then(|| IpAddr::V4((u32::from(v4) & keep).into()))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            Some(IpAddr::V6((u128::from(v6) & keep).into()))
        }
    }
}

/// The per-address state of a tracker.
#[derive(Debug, Default)]
pub struct Guard {
    config: GuardConfig,
    bans: BanList,
    sessions: HashMap<IpAddr, u32>,
    buckets: HashMap<IpAddr, Bucket>,
}

pub const BANNED_MESSAGE: &str = "this address is banned by the tracker's operator";

impl Guard {
    pub fn new(config: GuardConfig) -> Guard {
        Guard {
            config,
            ..Guard::default()
        }
    }

    pub fn config(&self) -> GuardConfig {
        self.config
    }

    pub fn set_bans(&mut self, bans: BanList) {
        self.bans = bans;
    }

    pub fn bans(&self) -> &BanList {
        &self.bans
    }

    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.bans.contains(ip)
    }

    fn banned(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.is_banned(ip) {
            return Err(Refusal {
                code: ErrorCode::BANNED,
                message: BANNED_MESSAGE.into(),
            });
        }
        Ok(())
    }

    /// An STA session from `ip` asks to open; on success it counts until
    /// [`Guard::session_closed`].
    pub fn open_session(&mut self, ip: IpAddr) -> Result<(), Refusal> {
        self.banned(ip)?;
        let ip = ip.to_canonical();
        let max = self.config.max_sessions_per_ip;
        let n = self.sessions.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return Err(Refusal {
                code: ErrorCode::LIMIT_REACHED,
                message: format!("at most {max} sessions per address; close one first"),
            });
        }
        *n += 1;
        Ok(())
    }

    pub fn session_closed(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        if let Some(n) = self.sessions.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.sessions.remove(&ip);
            }
        }
    }

    /// Sessions open from `ip`.
    pub fn sessions_of(&self, ip: IpAddr) -> u32 {
        self.sessions.get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    /// One request from `ip` at `now`: banned addresses and addresses over
    /// their rate are refused (the request is not answered otherwise).
    pub fn request(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        self.banned(ip)?;
        let rate = u64::from(self.config.requests_per_sec);
        if rate == 0 {
            return Ok(());
        }
        let burst = u64::from(self.config.request_burst.max(1));
        let ip = ip.to_canonical();
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= MAX_RATE_TRACKED_ADDRESSES {
            self.forget_idle(now);
        }
        let refused = || Refusal {
            code: ErrorCode::RATE_LIMITED,
            message: format!("more than {rate} requests per second from this address; slow down"),
        };
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= MAX_RATE_TRACKED_ADDRESSES {
            // Every tracked address is busy: a new one waits rather than
            // grow the table without bound.
            return Err(refused());
        }
        let bucket = self
            .buckets
            .entry(ip)
            .or_insert_with(|| Bucket::new(rate, burst, now));
        if bucket.take(now, 1) == 1 {
            Ok(())
        } else {
            Err(refused())
        }
    }

    /// Drops the buckets that are full again: an address that has been
    /// quiet for a burst's worth of time costs nothing.
    pub fn forget_idle(&mut self, now: Instant) {
        self.buckets.retain(|_, b| b.available(now) < b.burst());
    }

    pub fn tracked_addresses(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
