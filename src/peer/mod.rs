//! `sta-peerd`'s shell around the peer engine ([`crate::engine`]): it maps
//! reactor connections to engine links, carries out the engine's actions
//! on mio, memory-mapped files and the hash pool, and holds no protocol
//! rule of its own.

pub mod daemon;
pub mod dht;
pub mod disk;
pub mod http;
pub mod tls;
pub mod udp;

pub use crate::engine::Config;
pub use daemon::{Conn, Daemon, PEER_LISTENER, PEER_LISTENER_V6};
