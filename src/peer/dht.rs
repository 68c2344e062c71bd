//! `sta-peerd`'s DHT node (BEP 5): the sans-IO [`Dht`] fed from the UDP
//! socket on the peer port, its table saved in the daemon's directory.
//!
//! Every non-private file is announced when the table first has nodes and
//! again every [`ANNOUNCE_EVERY`] (every [`FETCH_EVERY`] while it is being
//! fetched, since the announce is also how peers are found); peers found
//! go to the engine. A lookup that reached nobody, or found no peer for a
//! file being fetched, is retried after [`RETRY_AFTER`].

use crate::dht::{Config, Dht, Event, Kind, saved};
use crate::engine::Time;
use crate::reactor::Ctx;
use crate::rng::Rng;
use crate::wire::InfoHash;
use log::{debug, info, warn};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A shared file is announced again after this (BEP 5 peers expire
/// announces after about 30 minutes).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(15 * 60);
/// A file being fetched asks (and announces) this often.
pub const FETCH_EVERY: Duration = Duration::from_secs(60);
/// A lookup that reached no node is tried again this soon.
pub const RETRY_AFTER: Duration = Duration::from_secs(15);
/// The table is written this often (and at exit).
pub const SAVE_EVERY: Duration = Duration::from_secs(5 * 60);
/// The saved table's file name, in the daemon's `--dir`.
pub const TABLE_FILE: &str = "sta-peerd.dht";

pub struct DhtShell {
    dht: Dht,
    /// The UDP listener it sends from.
    listener: usize,
    /// The TCP port peers reach us on, announced.
    port: u16,
    table_path: PathBuf,
    next_save: Time,
    /// When each file is next announced.
    due: HashMap<InfoHash, Time>,
    /// Files being fetched: a lookup of one that found no peer is retried
    /// soon.
    fetching: HashSet<InfoHash>,
}

/// 20 bytes from the OS, for the node id and token secrets; the clock
/// and process id if that fails (tokens are then guessable, not wrong).
fn os_random(rng: &mut Rng) -> [u8; 20] {
    let mut b = [0u8; 20];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    if read.is_err() {
        for chunk in b.chunks_mut(8) {
            let r = rng.next_u64().to_be_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
    b
}

impl DhtShell {
    /// A node sending from UDP listener `listener`, announcing `port`,
    /// with the table saved in `table_path` if that holds one (its id is
    /// kept, so other nodes know us again).
    pub fn new(listener: usize, port: u16, table_path: PathBuf, now: Time) -> DhtShell {
        let mut rng = Rng::from_entropy();
        let loaded = match std::fs::read(&table_path) {
            Ok(bytes) => match saved::decode(&bytes) {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!("dht: {}: {e}; starting afresh", table_path.display());
                    None
                }
            },
            Err(_) => None,
        };
        let id = loaded
            .as_ref()
            .map_or_else(|| os_random(&mut rng), |s| s.id);
        let config = Config {
            id,
            secret: os_random(&mut rng),
            rng_seed: rng.next_u64(),
        };
        let mut dht = Dht::new(config, now);
        if let Some(s) = &loaded {
            dht.seed_nodes(now, &s.nodes);
            info!(
                "dht: {} nodes loaded from {}",
                s.nodes.len(),
                table_path.display()
            );
        }
        DhtShell {
            dht,
            listener,
            port,
            table_path,
            next_save: now + SAVE_EVERY,
            due: HashMap::new(),
            fetching: HashSet::new(),
        }
    }

    /// Joins the DHT through `addrs` and the saved nodes.
    pub fn bootstrap(&mut self, now: Time, addrs: &[SocketAddr]) {
        self.dht.bootstrap(now, addrs);
    }

    /// A peer's DHT node (its PORT message): pinged, and kept in the
    /// table if it answers.
    pub fn ping(&mut self, now: Time, node: SocketAddr) {
        self.dht.ping_addr(now, node);
    }

    pub fn datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.dht.handle_datagram(now, from, bytes);
    }

    /// Timers, and announces of the files in `files` (info hash, being
    /// fetched) that are due.
    pub fn tick(&mut self, now: Time, files: &[(InfoHash, bool)]) {
        if self.dht.poll_timeout() <= now {
            self.dht.handle_timeout(now);
        }
        self.due.retain(|h, _| files.iter().any(|(f, _)| f == h));
        self.fetching = files.iter().filter(|f| f.1).map(|f| f.0).collect();
        if self.dht.nodes() > 0 {
            for (hash, fetching) in files {
                if self.due.get(hash).is_some_and(|&t| t > now) {
                    continue;
                }
                let every = if *fetching {
                    FETCH_EVERY
                } else {
                    ANNOUNCE_EVERY
                };
                if self.dht.announce(now, *hash, self.port, false).is_some() {
                    self.due.insert(*hash, now + every);
                }
            }
        }
        if now >= self.next_save {
            self.next_save = now + SAVE_EVERY;
            self.save();
        }
    }

    /// Sends what the node has to send; returns the peers found, by file.
    pub fn flush<S>(&mut self, now: Time, ctx: &mut Ctx<S>) -> Vec<(InfoHash, Vec<SocketAddr>)> {
        while let Some((to, bytes)) = self.dht.poll_transmit() {
            ctx.send_to(self.listener, to, bytes);
        }
        let mut found = Vec::new();
        while let Some(e) = self.dht.poll_event() {
            match e {
                Event::Peers {
                    info_hash, peers, ..
                } => {
                    let hex = crate::meta::info::to_hex(&info_hash);
                    debug!("dht: {} peers for {hex}", peers.len());
                    found.push((info_hash, peers.into_iter().map(SocketAddr::V4).collect()));
                }
                Event::Done {
                    target,
                    kind: Kind::Announce { .. },
                    queries,
                    peers,
                    announced,
                    ..
                } => {
                    debug!(
                        "dht: announce of {} done: {queries} queries, {peers} peers, announced to {announced} nodes",
                        crate::meta::info::to_hex(&target)
                    );
                    if announced == 0 || (peers == 0 && self.fetching.contains(&target)) {
                        self.due.insert(target, now + RETRY_AFTER);
                    }
                }
                Event::Done { .. } => {}
            }
        }
        found
    }

    /// Writes the routing table (best effort: a failure costs a warning
    /// and a bootstrap on the next start).
    pub fn save(&self) {
        let tmp = self.table_path.with_extension("dht.tmp");
        let written = std::fs::write(&tmp, self.dht.table_bytes())
            .and_then(|()| std::fs::rename(&tmp, &self.table_path));
        if let Err(e) = written {
            warn!("dht: cannot save {}: {e}", self.table_path.display());
        }
    }

    pub fn nodes(&self) -> usize {
        self.dht.nodes()
    }
}

impl Drop for DhtShell {
    /// The daemon is stopping: keep the table for the next start.
    fn drop(&mut self) {
        self.save();
    }
}
