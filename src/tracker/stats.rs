//! What the tracker counts: requests by protocol and kind, errors by
//! protocol and code, and how long requests took to answer, as plain
//! state the core updates where requests are answered (the shell measures
//! the time, the core keeps the histogram). `tracker::http_api` renders
//! them.

use crate::http::prometheus::{Histogram, LATENCY_BUCKETS};
use crate::wire::tracker::Request;
use std::collections::BTreeMap;

/// The protocols the tracker answers, as metrics label them.
pub const PROTOCOLS: [&str; 3] = ["sta", "udp", "http"];

/// The kinds of STA requests, in the order of [`Stats::sta`]; `malformed`
/// counts frames that did not decode.
pub const STA_KINDS: [&str; 11] = [
    "keepalive",
    "hello",
    "announce",
    "have",
    "list",
    "get_meta",
    "get_peers",
    "leave",
    "vouch",
    "accept_dials",
    "malformed",
];

#[derive(Debug)]
pub struct Stats {
    /// STA requests answered, by kind ([`STA_KINDS`]): an array, as this
    /// is counted for every request of the busiest protocol.
    pub sta: [u64; STA_KINDS.len()],
    /// (protocol, kind) -> requests answered, for the BitTorrent
    /// protocols.
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
            sta: [0; STA_KINDS.len()],
            requests: BTreeMap::new(),
            errors: BTreeMap::new(),
            latency: [0; 3].map(|_| Histogram::new(LATENCY_BUCKETS)),
        }
    }
}

impl Stats {
    /// One STA request; `None` for a frame that did not decode.
    pub fn sta_request(&mut self, req: Option<&Request>) {
        let i = match req {
            Some(Request::KeepAlive) => 0,
            Some(Request::Hello { .. }) => 1,
            Some(Request::Announce { .. }) => 2,
            Some(Request::Have { .. }) => 3,
            Some(Request::List { .. }) => 4,
            Some(Request::GetMeta(_)) => 5,
            Some(Request::GetPeers { .. }) => 6,
            Some(Request::Leave { .. }) => 7,
            Some(Request::Vouch { .. }) => 8,
            Some(Request::AcceptDials) => 9,
            None => 10,
        };
        self.sta[i] += 1;
    }

    /// One request of a BitTorrent protocol (`udp`, `http`).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The array's names are the kinds' own.
    #[test]
    fn sta_kinds_are_the_request_kinds() {
        let reqs = [
            Request::KeepAlive,
            Request::Hello {
                version: 1,
                peer_id: [0; 20],
                listen_port: 1,
            },
            Request::Leave { info_hash: [0; 20] },
            Request::AcceptDials,
            Request::Have {
                info_hash: [0; 20],
                piece: 0,
            },
        ];
        for req in &reqs {
            let mut s = Stats::default();
            s.sta_request(Some(req));
            let i = s.sta.iter().position(|&n| n == 1).unwrap();
            assert_eq!(STA_KINDS[i], req.kind());
        }
    }
}
