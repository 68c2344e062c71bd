//! BEP 11's `ut_pex`: peers of a torrent a connected peer tells us of, a
//! bencoded dict sent over a BEP 10 extended message. `added` and
//! `dropped` are compact IPv4 addresses (4 address bytes, then the port,
//! big-endian), `added6` and `dropped6` IPv6 ones (16 + 2 bytes);
//! `added.f` and `added6.f` one flags byte per added peer. The decoder
//! keeps at most [`MAX_PEX_PEERS`] addresses of each list, whatever the
//! message holds, so it allocates no more than that.

use super::extension::{ExtError, frame};
use crate::limits::MAX_PEX_PEERS;
use crate::meta::bencode::{self, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `added.f`: the peer prefers encryption.
pub const FLAG_ENCRYPTION: u8 = 0x01;
/// `added.f`: the peer is a seed (or uploads only).
pub const FLAG_SEED: u8 = 0x02;
/// `added.f`: the peer supports uTP.
pub const FLAG_UTP: u8 = 0x04;
/// `added.f`: the peer supports ut_holepunch.
pub const FLAG_HOLEPUNCH: u8 = 0x08;
/// `added.f`: the sender reached the peer at this address (it accepts
/// connections there).
pub const FLAG_REACHABLE: u8 = 0x10;

/// One PEX message, in either direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pex {
    /// Peers joined since the last message, each with its flags.
    pub added: Vec<(SocketAddr, u8)>,
    /// Peers gone since the last message.
    pub dropped: Vec<SocketAddr>,
}

fn bad(why: &str) -> ExtError {
    ExtError(format!("ut_pex: {why}"))
}

/// Reads up to `MAX_PEX_PEERS` compact addresses of `width` bytes.
fn compact(bytes: Option<&[u8]>, width: usize) -> Result<Vec<SocketAddr>, ExtError> {
    let Some(bytes) = bytes else {
        return Ok(Vec::new());
    };
    if bytes.len() % width != 0 {
        return Err(bad("a peer list is not a whole number of addresses"));
    }
    let addrs = bytes.chunks_exact(width).take(MAX_PEX_PEERS).map(|c| {
        let (ip, port) = c.split_at(width - 2);
        let port = u16::from_be_bytes([port[0], port[1]]);
        let ip = match <[u8; 4]>::try_from(ip) {
            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Err(_) => {
                let mut v6 = [0u8; 16];
                v6.copy_from_slice(ip);
                IpAddr::V6(Ipv6Addr::from(v6))
            }
        };
        SocketAddr::new(ip, port)
    });
    Ok(addrs.collect())
}

fn write_addr(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

impl Pex {
    /// Reads a message's body (what follows the extended id). Missing
    /// lists are empty; a missing or short flags list gives flags 0.
    /// Port 0 is left out (no one listens there).
    pub fn decode(body: &[u8]) -> Result<Pex, ExtError> {
        let dict = bencode::decode(body).map_err(|e| bad(&e.to_string()))?;
        if !matches!(dict, Value::Dict(_)) {
            return Err(bad("not a dict"));
        }
        let field = |k: &[u8]| dict.get(k).and_then(Value::as_bytes);
        let mut added = Vec::new();
        for (list, flags, width) in [
            (&b"added"[..], &b"added.f"[..], 6),
            (b"added6", b"added6.f", 18),
        ] {
            let flags = field(flags).unwrap_or_default();
            for (i, a) in compact(field(list), width)?.into_iter().enumerate() {
                if a.port() != 0 {
                    added.push((a, flags.get(i).copied().unwrap_or(0)));
                }
            }
        }
        let mut dropped = compact(field(b"dropped"), 6)?;
        dropped.extend(compact(field(b"dropped6"), 18)?);
        Ok(Pex { added, dropped })
    }

    /// Appends the message as a peer-wire frame, with `ext_id`, the id the
    /// receiver's `m` gave `ut_pex`. Every list is written, empty or not,
    /// in bencode's key order, as libtorrent does.
    pub fn encode(&self, ext_id: u8, out: &mut Vec<u8>) {
        let (mut a4, mut f4, mut a6, mut f6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (addr, flags) in &self.added {
            let (a, f) = match addr.is_ipv4() {
                true => (&mut a4, &mut f4),
                false => (&mut a6, &mut f6),
            };
            write_addr(addr, a);
            f.push(*flags);
        }
        let (mut d4, mut d6) = (Vec::new(), Vec::new());
        for addr in &self.dropped {
            write_addr(addr, if addr.is_ipv4() { &mut d4 } else { &mut d6 });
        }
        let dict = Value::Dict(vec![
            (b"added", Value::Bytes(&a4)),
            (b"added.f", Value::Bytes(&f4)),
            (b"added6", Value::Bytes(&a6)),
            (b"added6.f", Value::Bytes(&f6)),
            (b"dropped", Value::Bytes(&d4)),
            (b"dropped6", Value::Bytes(&d6)),
        ]);
        frame(ext_id, &dict.to_bytes(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_families() {
        let pex = Pex {
            added: vec![
                ("10.0.0.1:6881".parse().unwrap(), FLAG_SEED | FLAG_REACHABLE),
                ("[2001:db8::1]:51413".parse().unwrap(), 0),
            ],
            dropped: vec![
                "10.0.0.2:6882".parse().unwrap(),
                "[2001:db8::2]:1".parse().unwrap(),
            ],
        };
        let mut out = Vec::new();
        pex.encode(1, &mut out);
        assert_eq!(&out[4..6], &[20, 1]);
        assert_eq!(Pex::decode(&out[6..]), Ok(pex));
    }

    #[test]
    fn lenient_where_harmless_strict_where_not() {
        // No flags: 0; port 0 dropped; absent lists empty.
        let body = b"d5:added12:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x00e";
        let pex = Pex::decode(body).unwrap();
        assert_eq!(pex.added, vec![("10.0.0.1:6881".parse().unwrap(), 0)]);
        assert!(pex.dropped.is_empty());
        for body in [
            &b"le"[..],
            b"d5:added5:12345e",
            b"d8:dropped67:1234567e",
            b"not bencode",
        ] {
            assert!(Pex::decode(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn keeps_at_most_the_cap() {
        let n = MAX_PEX_PEERS + 50;
        let mut list = Vec::new();
        for i in 0..n {
            list.extend_from_slice(&[10, 0, (i >> 8) as u8, i as u8, 0x1a, 0xe1]);
        }
        let mut body = format!("d5:added{}:", list.len()).into_bytes();
        body.extend_from_slice(&list);
        body.push(b'e');
        assert_eq!(Pex::decode(&body).unwrap().added.len(), MAX_PEX_PEERS);
    }
}
