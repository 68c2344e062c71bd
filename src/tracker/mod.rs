//! The tracker: a catalog of files and of who holds which pieces, served
//! over the STA tracker protocol. `core` answers requests with no sockets;
//! `service` plugs it into the reactor.

pub mod catalog;
pub mod core;
pub mod service;

pub use self::core::{Config, Tracker};
