//! The tracker: a catalog of files and of who holds which pieces, served
//! over the STA tracker protocol. `core` answers requests with no sockets;
//! `service` plugs it into the reactor.

pub mod bt_http;
pub mod bt_udp;
pub mod catalog;
pub mod core;
pub mod service;
pub mod swarm;

pub use self::core::{Config, Tracker};
