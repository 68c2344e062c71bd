//! The BitTorrent DHT (BEP 5), sans-IO like the peer engine: no socket,
//! file, thread or clock of its own. [`Dht`] is a node; the shell feeds it
//! datagrams and the time and sends what it gives back.
//!
//! - `id`: node ids and the XOR metric;
//! - `table`: the k-bucket routing table;
//! - `lookup`: one iterative lookup (alpha = 3);
//! - `token`: announce tokens with rotating secrets;
//! - `store`: peers announced to us, bounded and expiring;
//! - `limiter`: the per-source-IP limit on queries answered;
//! - `saved`: the routing table as bytes, for restarts;
//! - `node`: the driver tying them together.
//!
//! The wire format is `crate::wire::krpc`; spec/bittorrent.md describes
//! both.

pub mod id;
pub mod limiter;
pub mod lookup;
pub mod node;
pub mod saved;
pub mod store;
pub mod table;
pub mod token;

pub use lookup::Kind;
pub use node::{Config, Dht, Event, LookupId, Stats};
