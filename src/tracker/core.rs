//! The tracker's protocol engine: a request in, exactly one response out,
//! written into the session's output buffer. No sockets and no clock, so
//! every rule here is unit-testable.

use super::catalog::{Catalog, ConnHash, HaveOutcome, Holding};
use crate::bitfield::Bitfield;
use crate::limits::{MAX_LIST_PAGE, MAX_PEERS_PER_ANSWER, TRACKER_PROTOCOL_VERSION};
use crate::meta::Info;
use crate::meta::info::to_hex;
use crate::reactor::ConnId;
use crate::rng::Rng;
use crate::wire::tracker::{
    ErrorCode, InfoHash, ListEntry, Lookup, PeerId, Pieces, Request, Response, encode_peers,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Limits a tracker operator may set.
#[derive(Debug, Clone)]
pub struct Config {
    /// Files one session may hold at once.
    pub max_files_per_peer: usize,
    /// Most peers in one get-peers answer (a request may ask fewer).
    pub max_peers_per_answer: u16,
    /// Most distinct files in the catalog.
    pub max_files: usize,
    /// Announced to peers in the welcome; the reactor enforces it.
    pub idle_timeout_secs: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_files_per_peer: 10_000,
            max_peers_per_answer: MAX_PEERS_PER_ANSWER,
            max_files: 1_000_000,
            idle_timeout_secs: 120,
        }
    }
}

/// A session known to the tracker.
#[derive(Debug)]
struct Peer {
    remote: IpAddr,
    /// Set by hello: the peer's id and the address it accepts peers on.
    identity: Option<(PeerId, SocketAddr)>,
    files: Vec<InfoHash>,
}

/// What the reactor should do with the session after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Close,
}

pub struct Tracker {
    config: Config,
    catalog: Catalog,
    peers: HashMap<ConnId, Peer, ConnHash>,
    rng: Rng,
    picked: Vec<usize>,
    /// Scratch for get-peers: identity and holder index of each answer.
    found: Vec<(PeerId, SocketAddr, usize)>,
}

type Outcome = Result<(), (ErrorCode, String)>;

fn fail<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, (ErrorCode, String)> {
    Err((code, message.into()))
}

impl Tracker {
    pub fn new(config: Config, rng: Rng) -> Tracker {
        Tracker {
            config,
            catalog: Catalog::default(),
            peers: HashMap::default(),
            rng,
            picked: Vec::new(),
            found: Vec::new(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn sessions(&self) -> usize {
        self.peers.len()
    }

    /// A session opened from `remote`.
    pub fn connect(&mut self, conn: ConnId, remote: IpAddr) {
        self.peers.insert(
            conn,
            Peer {
                remote,
                identity: None,
                files: Vec::new(),
            },
        );
    }

    /// The session is gone: everything it held leaves the catalog.
    pub fn disconnect(&mut self, conn: ConnId) {
        if let Some(peer) = self.peers.remove(&conn) {
            for hash in &peer.files {
                self.catalog.leave(conn, hash);
            }
        }
    }

    /// Answers one request, appending the response to `out`.
    pub fn handle(&mut self, conn: ConnId, req: Request, out: &mut Vec<u8>) -> Next {
        if matches!(req, Request::KeepAlive) {
            return Next::Continue;
        }
        let result = self.dispatch(conn, req, out);
        match result {
            Ok(()) => Next::Continue,
            Err((code, message)) => {
                Response::Error { code, message }.encode(out);
                if code == ErrorCode::UNSUPPORTED_VERSION {
                    Next::Close
                } else {
                    Next::Continue
                }
            }
        }
    }

    fn dispatch(&mut self, conn: ConnId, req: Request, out: &mut Vec<u8>) -> Outcome {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return fail(ErrorCode::HELLO_REQUIRED, "session unknown to the tracker");
        };
        if let Request::Hello {
            version,
            peer_id,
            listen_port,
        } = req
        {
            if version != TRACKER_PROTOCOL_VERSION {
                return fail(
                    ErrorCode::UNSUPPORTED_VERSION,
                    format!(
                        "protocol version {version} is not supported; this tracker speaks {TRACKER_PROTOCOL_VERSION}"
                    ),
                );
            }
            if peer.identity.is_some() {
                return fail(
                    ErrorCode::INVALID_PARAMETERS,
                    "hello was already sent on this session",
                );
            }
            peer.identity = Some((peer_id, SocketAddr::new(peer.remote, listen_port)));
            Response::Welcome {
                version: TRACKER_PROTOCOL_VERSION,
                idle_timeout_secs: self.config.idle_timeout_secs,
            }
            .encode(out);
            return Ok(());
        }
        if peer.identity.is_none() {
            return fail(
                ErrorCode::HELLO_REQUIRED,
                "send hello before any other request",
            );
        }
        match req {
            Request::KeepAlive | Request::Hello { .. } => Ok(()),
            Request::Announce { info, pieces } => self.announce(conn, &info, pieces, out),
            Request::Have { info_hash, piece } => self.have(conn, &info_hash, piece, out),
            Request::List {
                offset,
                limit,
                filter,
            } => self.list(offset, limit, &filter, out),
            Request::GetMeta(lookup) => self.get_meta(&lookup, out),
            Request::GetPeers {
                info_hash,
                max,
                piece,
            } => self.get_peers(conn, &info_hash, max, piece, out),
            Request::Leave { info_hash } => self.leave(conn, &info_hash, out),
        }
    }

    fn announce(
        &mut self,
        conn: ConnId,
        bencoded: &[u8],
        pieces: Pieces,
        out: &mut Vec<u8>,
    ) -> Outcome {
        // A file the catalog knows with these very bytes parses to the
        // same metadata and info hash: reuse them rather than hash, parse
        // and copy the dict again (announcing a known file is the common
        // case). Anything else takes the full path.
        let known_info = self
            .catalog
            .by_bencoded(bencoded)
            .map(|e| Arc::clone(&e.info));
        let info = match known_info {
            Some(info) => info,
            None => match Info::from_bencoded(bencoded) {
                Ok(info) => Arc::new(info),
                Err(e) => return fail(ErrorCode::INVALID_METADATA, e.to_string()),
            },
        };
        let holding = match pieces {
            Pieces::All => Holding::All,
            Pieces::Bitfield(bytes) => match Bitfield::from_bytes(&bytes, info.num_pieces()) {
                Ok(bits) if bits.is_complete() => Holding::All,
                Ok(bits) => Holding::Some(bits),
                Err(e) => return fail(ErrorCode::INVALID_PARAMETERS, e.to_string()),
            },
        };
        let hash = info.info_hash;
        let known = self.catalog.get(&hash).is_some();
        let peer = self
            .peers
            .get_mut(&conn)
            .ok_or((ErrorCode::HELLO_REQUIRED, String::new()))?;
        let holds = self
            .catalog
            .get(&hash)
            .is_some_and(|e| e.holder(conn).is_some());
        if !holds && peer.files.len() >= self.config.max_files_per_peer {
            return fail(
                ErrorCode::LIMIT_REACHED,
                format!(
                    "a session may hold at most {} files",
                    self.config.max_files_per_peer
                ),
            );
        }
        if !known && self.catalog.len() >= self.config.max_files {
            return fail(
                ErrorCode::LIMIT_REACHED,
                format!("the catalog is full ({} files)", self.config.max_files),
            );
        }
        if self.catalog.hold(conn, hash, holding, || info) {
            peer.files.push(hash);
        }
        Response::Announced { info_hash: hash }.encode(out);
        Ok(())
    }

    fn have(&mut self, conn: ConnId, hash: &InfoHash, piece: u32, out: &mut Vec<u8>) -> Outcome {
        match self.catalog.have(conn, hash, piece) {
            HaveOutcome::Updated => {
                Response::Ack.encode(out);
                Ok(())
            }
            HaveOutcome::UnknownFile => not_found(hash),
            HaveOutcome::OutOfRange => self.out_of_range(hash, piece),
            HaveOutcome::NotHolding => fail(
                ErrorCode::INVALID_PARAMETERS,
                format!("announce {} before sending have for it", to_hex(hash)),
            ),
        }
    }

    fn out_of_range(&self, hash: &InfoHash, piece: u32) -> Outcome {
        let n = self.catalog.get(hash).map_or(0, |e| e.info.num_pieces());
        fail(
            ErrorCode::PIECE_OUT_OF_RANGE,
            format!(
                "piece {piece} is out of range: {} has {n} pieces",
                to_hex(hash)
            ),
        )
    }

    fn list(&mut self, offset: u32, limit: u16, filter: &str, out: &mut Vec<u8>) -> Outcome {
        if limit > MAX_LIST_PAGE {
            return fail(
                ErrorCode::INVALID_PARAMETERS,
                format!("a page holds at most {MAX_LIST_PAGE} entries, {limit} asked"),
            );
        }
        let needle = filter.to_lowercase();
        let mut total = 0u32;
        let mut entries = Vec::new();
        for entry in self.catalog.ordered() {
            if !needle.is_empty() && !entry.info.name.to_lowercase().contains(&needle) {
                continue;
            }
            if total >= offset && entries.len() < usize::from(limit) {
                entries.push(ListEntry {
                    info_hash: entry.info.info_hash,
                    length: entry.info.length,
                    piece_length: entry.info.piece_length,
                    peers: entry.holders.len() as u32,
                    seeders: entry.seeders,
                    name: entry.info.name.clone(),
                });
            }
            total += 1;
        }
        Response::ListPage { total, entries }.encode(out);
        Ok(())
    }

    fn get_meta(&self, lookup: &Lookup, out: &mut Vec<u8>) -> Outcome {
        let hash = match lookup {
            Lookup::Hash(hash) => *hash,
            Lookup::Name(name) => {
                let hashes: Vec<&InfoHash> = self.catalog.by_name(name).collect();
                match hashes.as_slice() {
                    [] => {
                        return fail(ErrorCode::FILE_NOT_FOUND, format!("no file named '{name}'"));
                    }
                    [one] => **one,
                    many => {
                        let list: Vec<String> = many.iter().map(|h| to_hex(*h)).collect();
                        return fail(
                            ErrorCode::AMBIGUOUS_NAME,
                            format!(
                                "'{name}' names {} files: {}; ask by info hash",
                                many.len(),
                                list.join(", ")
                            ),
                        );
                    }
                }
            }
        };
        let Some(entry) = self.catalog.get(&hash) else {
            return not_found(&hash);
        };
        Response::Meta {
            info: entry.info.bencoded.clone(),
        }
        .encode(out);
        Ok(())
    }

    fn get_peers(
        &mut self,
        conn: ConnId,
        hash: &InfoHash,
        max: u16,
        piece: Option<u32>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let Some(entry) = self.catalog.get(hash) else {
            return not_found(hash);
        };
        if let Some(p) = piece
            && p >= entry.info.num_pieces()
        {
            return self.out_of_range(hash, p);
        }
        let max = usize::from(max.min(self.config.max_peers_per_answer));
        let mut picked = std::mem::take(&mut self.picked);
        self.catalog
            .sample(entry, conn, piece, max, &mut self.rng, &mut picked);
        let peers = &self.peers;
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        found.extend(picked.iter().filter_map(|&i| {
            let (peer_id, addr) = peers.get(&entry.holders[i].conn)?.identity.as_ref()?;
            // Port 0: the peer downloads but accepts no connections.
            (addr.port() != 0).then_some((*peer_id, *addr, i))
        }));
        // Room for the whole answer at once: peer id, address (up to 19
        // bytes), pieces tag, and a bitfield with its length.
        let per_peer = 20 + 19 + 1 + 4 + entry.info.num_pieces().div_ceil(8) as usize;
        out.reserve(4 + 1 + 20 + 2 + found.len() * per_peer);
        let answer = found
            .iter()
            .map(|(peer_id, addr, i)| (peer_id, *addr, entry.bits(*i)));
        encode_peers(out, hash, answer);
        self.found = found;
        self.picked = picked;
        Ok(())
    }

    fn leave(&mut self, conn: ConnId, hash: &InfoHash, out: &mut Vec<u8>) -> Outcome {
        if !self.catalog.leave(conn, hash) {
            return not_found(hash);
        }
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.files.retain(|h| h != hash);
        }
        Response::Ack.encode(out);
        Ok(())
    }
}

fn not_found(hash: &InfoHash) -> Outcome {
    fail(
        ErrorCode::FILE_NOT_FOUND,
        format!("no file with info hash {}", to_hex(hash)),
    )
}
