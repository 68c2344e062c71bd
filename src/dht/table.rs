//! The routing table: k-buckets (BEP 5) that split on our own id, so the
//! table knows many nodes near us and a few far away.
//!
//! Bucket `i` below the last holds nodes sharing exactly `i` leading bits
//! with us; the last bucket holds every node sharing more. When the last
//! bucket is full and a node for it arrives, it splits in two. A node is
//! *good* when it answered us within [`GOOD_FOR`], *questionable* after
//! that, and *bad* after [`BAD_FAILS`] unanswered queries in a row. A full
//! bucket keeps newcomers in a replacement list; a bad node gives way to
//! the newest replacement.

use super::id::{ID_BITS, common_prefix, distance};
use crate::engine::Time;
use crate::limits::DHT_K;
use crate::wire::krpc::NodeId;
use std::net::SocketAddrV4;
use std::time::Duration;

/// How long an answer keeps a node good (BEP 5: 15 minutes).
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Unanswered queries in a row that make a node bad.
pub const BAD_FAILS: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: NodeId,
    pub addr: SocketAddrV4,
    /// Last answer or query from it.
    pub last_seen: Time,
    /// It has answered one of our queries (a node that only queried us
    /// may be unreachable).
    pub confirmed: bool,
    pub fails: u8,
}

impl Node {
    pub fn is_bad(&self) -> bool {
        self.fails >= BAD_FAILS
    }

    pub fn is_good(&self, now: Time) -> bool {
        self.confirmed && !self.is_bad() && now.since(self.last_seen) < GOOD_FOR
    }
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    nodes: Vec<Node>,
    replacements: Vec<Node>,
    /// Last time a node of it answered or was added: a bucket quiet for
    /// [`GOOD_FOR`] is refreshed.
    changed: Time,
}

/// How a node was heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// It answered our query.
    Answered,
    /// It sent us a query.
    Queried,
}

#[derive(Debug)]
pub struct Table {
    own: NodeId,
    buckets: Vec<Bucket>,
}

impl Table {
    pub fn new(own: NodeId, now: Time) -> Table {
        Table {
            own,
            buckets: vec![Bucket {
                changed: now,
                ..Bucket::default()
            }],
        }
    }

    pub fn own_id(&self) -> &NodeId {
        &self.own
    }

    fn bucket_of(&self, id: &NodeId) -> usize {
        common_prefix(&self.own, id).min(self.buckets.len() - 1)
    }

    /// Records that `id` at `addr` was heard from. Returns a questionable
    /// node worth pinging when the node could only be kept as a
    /// replacement (if that node fails, the newcomer takes its place).
    pub fn heard(
        &mut self,
        now: Time,
        id: NodeId,
        addr: SocketAddrV4,
        how: Heard,
    ) -> Option<(NodeId, SocketAddrV4)> {
        if id == self.own {
            return None;
        }
        let b = self.bucket_of(&id);
        let bucket = &mut self.buckets[b];
        if let Some(n) = bucket.nodes.iter_mut().find(|n| n.id == id) {
            // An id seen at a new address keeps the old one unless it
            // answered from the new one: a query is easy to forge.
            if how == Heard::Answered {
                n.addr = addr;
                n.confirmed = true;
                n.fails = 0;
                bucket.changed = now;
            }
            if n.addr == addr {
                n.last_seen = now;
            }
            return None;
        }
        if self
            .buckets
            .iter()
            .any(|b| b.nodes.iter().any(|n| n.addr == addr))
        {
            // One entry per address: another id from it is not trusted.
            return None;
        }
        let node = Node {
            id,
            addr,
            last_seen: now,
            confirmed: how == Heard::Answered,
            fails: 0,
        };
        self.insert(now, node)
    }

    fn insert(&mut self, now: Time, node: Node) -> Option<(NodeId, SocketAddrV4)> {
        loop {
            let b = self.bucket_of(&node.id);
            let bucket = &mut self.buckets[b];
            if bucket.nodes.len() < DHT_K {
                bucket.nodes.push(node);
                bucket.changed = now;
                return None;
            }
            if let Some(bad) = bucket.nodes.iter_mut().find(|n| n.is_bad()) {
                *bad = node;
                bucket.changed = now;
                return None;
            }
            let last = b == self.buckets.len() - 1;
            if last && self.buckets.len() < ID_BITS {
                self.split();
                continue;
            }
            let bucket = &mut self.buckets[b];
            if bucket.replacements.len() >= DHT_K {
                bucket.replacements.remove(0);
            }
            bucket.replacements.push(node);
            return bucket
                .nodes
                .iter()
                .filter(|n| !n.is_good(now))
                .min_by_key(|n| n.last_seen)
                .map(|n| (n.id, n.addr));
        }
    }

    /// Splits the last bucket: nodes sharing more bits with us move on.
    fn split(&mut self) {
        let at = self.buckets.len() - 1;
        let own = self.own;
        let last = &mut self.buckets[at];
        let changed = last.changed;
        let (stay, go): (Vec<Node>, Vec<Node>) = last
            .nodes
            .drain(..)
            .partition(|n| common_prefix(&own, &n.id) == at);
        let (rstay, rgo): (Vec<Node>, Vec<Node>) = last
            .replacements
            .drain(..)
            .partition(|n| common_prefix(&own, &n.id) == at);
        last.nodes = stay;
        last.replacements = rstay;
        self.buckets.push(Bucket {
            nodes: go,
            replacements: rgo,
            changed,
        });
    }

    /// A query to `id` went unanswered. A node gone bad is replaced by the
    /// newest replacement, if any (otherwise it stays, unused, so a table
    /// does not empty itself while the network is down).
    pub fn failed(&mut self, id: &NodeId) {
        let b = self.bucket_of(id);
        let bucket = &mut self.buckets[b];
        let Some(i) = bucket.nodes.iter().position(|n| n.id == *id) else {
            return;
        };
        bucket.nodes[i].fails = bucket.nodes[i].fails.saturating_add(1);
        if bucket.nodes[i].is_bad()
            && let Some(r) = bucket.replacements.pop()
        {
            bucket.nodes[i] = r;
        }
    }

    /// Up to `n` usable (not bad) nodes closest to `target`, closest first.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<(NodeId, SocketAddrV4)> {
        let mut all: Vec<(NodeId, &Node)> = self
            .buckets
            .iter()
            .flat_map(|b| b.nodes.iter())
            .filter(|node| !node.is_bad())
            .map(|node| (distance(&node.id, target), node))
            .collect();
        all.sort_unstable_by_key(|a| a.0);
        all.iter()
            .take(n)
            .map(|(_, node)| (node.id, node.addr))
            .collect()
    }

    /// Buckets quiet for [`GOOD_FOR`]: their index (the prefix length of
    /// ids in them), marked changed now so each is refreshed once.
    pub fn stale_buckets(&mut self, now: Time) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            if now.since(b.changed) >= GOOD_FOR {
                b.changed = now;
                out.push(i);
            }
        }
        out
    }

    /// Questionable nodes (not heard from for [`GOOD_FOR`]), at most one
    /// per bucket, the longest silent: to ping.
    pub fn questionable(&self, now: Time) -> Vec<(NodeId, SocketAddrV4)> {
        self.buckets
            .iter()
            .filter_map(|b| {
                b.nodes
                    .iter()
                    .filter(|n| !n.is_bad() && now.since(n.last_seen) >= GOOD_FOR)
                    .min_by_key(|n| n.last_seen)
                    .map(|n| (n.id, n.addr))
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Every node, bucket by bucket.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::id::random_id_in_bucket;
    use crate::rng::Rng;

    fn addr(i: u32) -> SocketAddrV4 {
        SocketAddrV4::new((0x0a00_0000 + i).into(), 6881)
    }

    #[test]
    fn buckets_split_on_our_side_only() {
        let own = [0u8; 20];
        let mut t = Table::new(own, Time::ZERO);
        let mut rng = Rng::new(1);
        let mut n = 0;
        // 20 nodes in each of the first 4 buckets: the far ones keep 8 and
        // the rest as replacements; the table splits down to us.
        for prefix in 0..4 {
            for _ in 0..20 {
                n += 1;
                let id = random_id_in_bucket(&own, prefix, &mut rng);
                t.heard(Time::ZERO, id, addr(n), Heard::Answered);
            }
        }
        assert_eq!(t.len(), 4 * DHT_K);
        // The fourth bucket filled while last, so it split off an (empty)
        // fifth for ids nearer ours.
        assert_eq!(t.bucket_count(), 5);
        let close = t.closest(&own, 3);
        assert!(close.iter().all(|(id, _)| common_prefix(&own, id) == 3));
        // Same address under another id: ignored.
        t.heard(Time::ZERO, [9; 20], addr(1), Heard::Answered);
        assert_eq!(t.len(), 4 * DHT_K);
    }

    #[test]
    fn bad_nodes_give_way_and_stale_buckets_are_found() {
        let own = [0u8; 20];
        let mut t = Table::new(own, Time::ZERO);
        let mut rng = Rng::new(2);
        let ids: Vec<NodeId> = (0..DHT_K + 1)
            .map(|_| random_id_in_bucket(&own, 0, &mut rng))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            t.heard(Time::ZERO, *id, addr(i as u32), Heard::Answered);
        }
        assert!(t.nodes().all(|n| n.id != ids[DHT_K]));
        let first = t.nodes().next().unwrap().id;
        t.failed(&first);
        assert!(t.nodes().any(|n| n.id == first));
        t.failed(&first);
        assert!(t.nodes().all(|n| n.id != first));
        assert!(t.nodes().any(|n| n.id == ids[DHT_K]));
        let later = Time::ZERO + GOOD_FOR;
        assert!(!t.stale_buckets(later).is_empty());
        assert!(t.stale_buckets(later).is_empty());
        // Bucket 1 (split off for ids near ours) is empty.
        assert_eq!(t.bucket_count(), 2);
        assert_eq!(t.questionable(later).len(), 1);
    }
}
