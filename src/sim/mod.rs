//! A deterministic swarm simulator: many real peer engines
//! ([`crate::engine`]) and the real tracker core ([`crate::tracker`]) on
//! a virtual clock and an in-memory network. No threads, sockets, files
//! or system clock; every random choice comes from one seed, so a run
//! is reproducible byte for byte.
//!
//! - [`clock`]: the agenda, events ordered by (time, sequence);
//! - [`net`]: access links with capacity, latency and loss; TCP-like
//!   connections;
//! - [`store`]: disks, real bytes or blocks by reference;
//! - [`host`]: one machine (engine, disk, links, outcome);
//! - [`swarm`]: the world that ties them together;
//! - [`report`]: bounds and figures of a run;
//! - [`dht`]: many DHT nodes (BEP 5) on the same clock, datagrams in
//!   memory.

pub mod clock;
pub mod conn;
pub mod dht;
pub mod host;
pub mod net;
pub mod report;
pub mod scenario;
mod shell;
pub mod store;
pub mod swarm;
pub mod usage;

pub use host::Outcome;
pub use net::{HostId, LinkSpec, NetParams};
pub use store::{RefStorage, SimStorage};
pub use swarm::{Sim, World};
