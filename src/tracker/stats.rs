//! What the tracker counts: requests by protocol and kind, errors by
//! protocol and code, and how long requests took to answer, as plain
//! state the core updates where requests are answered (the shell measures
//! the time, the core keeps the histogram). `tracker::http_api` renders
//! them.

use crate::http::prometheus::{Histogram, LATENCY_BUCKETS};
use std::collections::BTreeMap;

/// The protocols the tracker answers, as metrics label them.
pub const PROTOCOLS: [&str; 3] = ["sta", "udp", "http"];

#[derive(Debug)]
pub struct Stats {
    /// (protocol, kind) -> requests answered.
    pub requests: BTreeMap<(&'static str, &'static str), u64>,
    /// (protocol, code) -> error answers: the STA error code, `failure`
    /// for a BitTorrent failure reason, or an HTTP status.
    pub errors: BTreeMap<(&'static str, String), u64>,
    /// Time to answer one request, by protocol (in `PROTOCOLS` order).
    pub latency: [Histogram; 3],
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            requests: BTreeMap::new(),
            errors: BTreeMap::new(),
            latency: [0; 3].map(|_| Histogram::new(LATENCY_BUCKETS)),
        }
    }
}

impl Stats {
    pub fn request(&mut self, protocol: &'static str, kind: &'static str) {
        *self.requests.entry((protocol, kind)).or_default() += 1;
    }

    pub fn error(&mut self, protocol: &'static str, code: impl ToString) {
        *self.errors.entry((protocol, code.to_string())).or_default() += 1;
    }

    /// One request of `protocol` took `seconds` to answer.
    pub fn observe(&mut self, protocol: &'static str, seconds: f64) {
        if let Some(i) = PROTOCOLS.iter().position(|p| *p == protocol) {
            self.latency[i].observe(seconds);
        }
    }
}
