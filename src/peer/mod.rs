//! The peer daemon's engine: piece picking, peer-wire sessions, the link
//! to the tracker and the control socket, all driven by the reactor.

pub mod control_link;
pub mod daemon;
pub mod files;
pub mod pending_writes;
pub mod picker;
pub mod session;
pub mod torrent;
pub mod tracker_link;
pub mod wire_link;

pub use daemon::{Config, Daemon};
