//! `sta-peerd`'s UDP socket, on the address and port of its TCP peer
//! listener, as BitTorrent clients expect: they try uTP (BEP 29) on the
//! peer port before TCP, and the DHT (BEP 5) shares that port too.
//!
//! Datagrams are sorted by their first bytes ([`Datagram::classify`]).
//! STA speaks no uTP stream: a uTP SYN is answered with an ST_RESET, so
//! the client's connection attempt fails at once and (libtorrent) falls
//! back to TCP instead of waiting out its uTP timeouts; see
//! spec/bittorrent.md, "uTP". Other uTP packets are dropped. KRPC goes to
//! the DHT node (`super::dht`) when it is on, and is dropped here
//! otherwise.

use crate::limits::MAX_UTP_RESETS_PER_SEC;
use crate::ratelimit::Bucket;
use crate::wire::utp::{self, Header, Kind};
use log::trace;
use std::net::SocketAddr;
use std::time::Instant;

/// What a datagram on the peer port is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram {
    /// A uTP packet (type 0 to 4, version 1, a whole header).
    Utp,
    /// A bencoded dict: a KRPC message of the DHT (BEP 5).
    Krpc,
    /// Anything else: dropped.
    Other,
}

impl Datagram {
    pub fn classify(bytes: &[u8]) -> Datagram {
        if utp::looks_like_utp(bytes) {
            Datagram::Utp
        } else if bytes.first() == Some(&b'd') {
            Datagram::Krpc
        } else {
            Datagram::Other
        }
    }
}

/// The UDP side of `sta-peerd`: no I/O of its own, the reactor hands it
/// each datagram with the time and takes back the reply.
pub struct Udp {
    /// Resets that may still be sent: the socket must not become a
    /// reflector for spoofed SYNs.
    resets: Bucket,
    /// When the daemon started: uTP timestamps count microseconds from it.
    epoch: Instant,
    /// Sequence number of the next reset (any value is valid; counting
    /// keeps them apart in a capture).
    seq_nr: u16,
}

impl Udp {
    pub fn new(now: Instant) -> Udp {
        let rate = u64::from(MAX_UTP_RESETS_PER_SEC);
        Udp {
            resets: Bucket::new(rate, rate, now),
            epoch: now,
            seq_nr: 1,
        }
    }

    /// Handles one datagram from `from`, leaving the answer (if any) in
    /// `reply`.
    pub fn datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8], reply: &mut Vec<u8>) {
        match Datagram::classify(bytes) {
            Datagram::Utp => self.utp(now, from, bytes, reply),
            // With --dht the daemon hands KRPC to its DHT node first.
            Datagram::Krpc => trace!("udp: KRPC from {from} dropped (no DHT)"),
            Datagram::Other => trace!("udp: {} bytes from {from} dropped", bytes.len()),
        }
    }

    /// Refuses a uTP SYN with an ST_RESET. Nothing else is answered: STA
    /// never accepts a uTP connection, so no peer holds one with it, and a
    /// non-SYN packet is stale or spoofed; its sender's timeout ends it.
    /// A reset is never answered (two refusers would ping-pong).
    fn utp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8], reply: &mut Vec<u8>) {
        let syn = match utp::decode(bytes) {
            Ok(p) if p.header.kind == Kind::Syn => p.header,
            Ok(p) => {
                trace!(
                    "utp: {:?} from {from} for no connection dropped",
                    p.header.kind
                );
                return;
            }
            Err(e) => {
                trace!("utp: datagram from {from} dropped: {e}");
                return;
            }
        };
        if self.resets.take(now, 1) == 0 {
            trace!("utp: SYN from {from} not answered: over {MAX_UTP_RESETS_PER_SEC} resets/s");
            return;
        }
        // uTP timestamps are the low 32 bits of a microsecond clock.
        let now_us = now.saturating_duration_since(self.epoch).as_micros() as u32;
        let reset = Header::reset_for(&syn, now_us, self.seq_nr);
        self.seq_nr = self.seq_nr.wrapping_add(1);
        trace!(
            "utp: SYN from {from} (id {}, seq {}) refused with ST_RESET",
            syn.connection_id, syn.seq_nr
        );
        reply.extend_from_slice(&reset.encode());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn from() -> SocketAddr {
        "10.0.0.2:6881".parse().unwrap()
    }

    fn packet(kind: Kind, id: u16, seq_nr: u16) -> Vec<u8> {
        Header {
            kind,
            extension: 0,
            connection_id: id,
            timestamp_us: 0,
            timestamp_diff_us: 0,
            wnd_size: 1 << 20,
            seq_nr,
            ack_nr: 0,
        }
        .encode()
        .to_vec()
    }

    #[test]
    fn datagrams_are_sorted_by_their_first_bytes() {
        assert_eq!(Datagram::classify(&packet(Kind::Syn, 1, 1)), Datagram::Utp);
        assert_eq!(Datagram::classify(b"d1:y1:qe"), Datagram::Krpc);
        assert_eq!(Datagram::classify(b""), Datagram::Other);
        assert_eq!(Datagram::classify(&[0x41; 5]), Datagram::Other);
        // BEP 15 connect request (a UDP tracker's, not ours).
        assert_eq!(Datagram::classify(&[0, 0, 4, 0x17]), Datagram::Other);
    }

    #[test]
    fn a_syn_gets_a_reset_with_its_id_and_seq_nr() {
        let t0 = Instant::now();
        let mut udp = Udp::new(t0);
        let mut reply = Vec::new();
        udp.datagram(t0, from(), &packet(Kind::Syn, 4242, 77), &mut reply);
        let r = utp::decode(&reply).unwrap().header;
        assert_eq!(r.kind, Kind::Reset);
        assert_eq!((r.connection_id, r.ack_nr), (4242, 77));
    }

    #[test]
    fn other_packets_and_other_protocols_get_no_answer() {
        let t0 = Instant::now();
        let mut udp = Udp::new(t0);
        for kind in [Kind::Data, Kind::Fin, Kind::State, Kind::Reset] {
            let mut reply = Vec::new();
            udp.datagram(t0, from(), &packet(kind, 1, 1), &mut reply);
            assert!(reply.is_empty(), "{kind:?} was answered");
        }
        let mut reply = Vec::new();
        udp.datagram(
            t0,
            from(),
            b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe",
            &mut reply,
        );
        udp.datagram(t0, from(), b"\x41\x00garbage", &mut reply);
        assert!(reply.is_empty());
    }

    #[test]
    fn resets_are_rate_limited() {
        let t0 = Instant::now();
        let mut udp = Udp::new(t0);
        let syn = packet(Kind::Syn, 9, 9);
        let answered = |udp: &mut Udp, at: Instant, n: u32| {
            (0..n)
                .filter(|_| {
                    let mut reply = Vec::new();
                    udp.datagram(at, from(), &syn, &mut reply);
                    !reply.is_empty()
                })
                .count() as u32
        };
        let limit = MAX_UTP_RESETS_PER_SEC;
        assert_eq!(answered(&mut udp, t0, 3 * limit), limit);
        // Credit comes back with time, at the limit's rate.
        let later = t0 + Duration::from_millis(500);
        assert_eq!(answered(&mut udp, later, limit), limit / 2);
    }
}
