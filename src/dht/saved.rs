//! The routing table as bytes, saved by the daemon across restarts so it
//! rejoins the DHT without a bootstrap node and keeps its id (other nodes
//! know it by that id).
//!
//! Format, version 1: a version byte (1), our 20-byte node id, a `u16`
//! big-endian count, then that many compact nodes (26 bytes: id, IPv4,
//! port). Bad nodes are left out; at most [`DHT_MAX_SAVED_NODES`] are
//! written or read.

use super::table::Table;
use crate::limits::DHT_MAX_SAVED_NODES;
use crate::wire::krpc::{COMPACT_NODE_LEN, NodeId, compact_nodes, put_compact_peer};
use std::fmt;
use std::net::SocketAddrV4;

pub const VERSION: u8 = 1;
const HEADER: usize = 1 + 20 + 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub id: NodeId,
    pub nodes: Vec<(NodeId, SocketAddrV4)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedError {
    Truncated,
    Version(u8),
    TooMany(usize),
}

impl fmt::Display for SavedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SavedError::Truncated => f.write_str("saved DHT table is truncated"),
            SavedError::Version(v) => write!(f, "saved DHT table has unknown version {v}"),
            SavedError::TooMany(n) => {
                write!(
                    f,
                    "saved DHT table claims {n} nodes (limit {DHT_MAX_SAVED_NODES})"
                )
            }
        }
    }
}

impl std::error::Error for SavedError {}

pub fn encode(table: &Table) -> Vec<u8> {
    let nodes: Vec<_> = table
        .nodes()
        .filter(|n| !n.is_bad())
        .take(DHT_MAX_SAVED_NODES)
        .collect();
    let mut out = Vec::with_capacity(HEADER + nodes.len() * COMPACT_NODE_LEN);
    out.push(VERSION);
    out.extend_from_slice(table.own_id());
    out.extend_from_slice(&(nodes.len() as u16).to_be_bytes());
    for n in nodes {
        out.extend_from_slice(&n.id);
        put_compact_peer(&mut out, &n.addr);
    }
    out
}

pub fn decode(b: &[u8]) -> Result<Saved, SavedError> {
    let (&version, rest) = b.split_first().ok_or(SavedError::Truncated)?;
    if version != VERSION {
        return Err(SavedError::Version(version));
    }
    if b.len() < HEADER {
        return Err(SavedError::Truncated);
    }
    let id: NodeId = rest[..20].try_into().map_err(|_| SavedError::Truncated)?;
    let count = usize::from(u16::from_be_bytes([rest[20], rest[21]]));
    if count > DHT_MAX_SAVED_NODES {
        return Err(SavedError::TooMany(count));
    }
    let body = &b[HEADER..];
    if body.len() != count * COMPACT_NODE_LEN {
        return Err(SavedError::Truncated);
    }
    Ok(Saved {
        id,
        nodes: compact_nodes(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::table::Heard;
    use crate::engine::Time;

    #[test]
    fn round_trip_and_refusals() {
        let mut t = Table::new([1; 20], Time::ZERO);
        for i in 0..5u8 {
            let addr = SocketAddrV4::new([10, 0, 0, i].into(), 6881);
            t.heard(Time::ZERO, [i + 10; 20], addr, Heard::Answered);
        }
        let b = encode(&t);
        assert_eq!(b.len(), HEADER + 5 * COMPACT_NODE_LEN);
        let s = decode(&b).unwrap();
        assert_eq!(s.id, [1; 20]);
        assert_eq!(s.nodes.len(), 5);
        assert_eq!(decode(&b[..b.len() - 1]), Err(SavedError::Truncated));
        assert_eq!(decode(&[]), Err(SavedError::Truncated));
        assert_eq!(decode(&[2]), Err(SavedError::Version(2)));
        let mut huge = b[..21].to_vec();
        huge.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(decode(&huge), Err(SavedError::TooMany(65535)));
    }
}
