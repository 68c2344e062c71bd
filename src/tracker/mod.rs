//! The tracker: a catalog of files and of who holds which pieces, served
//! over the STA tracker protocol and, to BitTorrent clients, over BEP 15
//! and BEP 3 (codecs in `wire::bt_udp` and `wire::bt_http`). `core`
//! answers requests with no sockets; `service` plugs it into the reactor.

pub mod catalog;
pub mod core;
mod file_entry;
pub mod guard;
mod hash;
pub mod http_api;
pub mod service;
pub mod stats;
pub mod swarm;
pub mod vouches;

pub use self::core::{Config, Tracker};
