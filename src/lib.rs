//! STA, a Simple Torrent-like Application: a tracker, a peer daemon and a
//! CLI for moving large files between many machines, piece by piece.
//!
//! The protocol layers (`wire`, `meta`) are sans-IO: they turn bytes into
//! typed values and back, and know nothing of sockets, clocks or files.

pub mod aligned;
pub mod api;
pub mod bitfield;
pub mod cli;
pub mod config;
pub mod control;
pub mod dht;
pub mod engine;
pub mod hashpool;
pub mod http;
pub mod json;
pub mod limits;
pub mod meta;
pub mod peer;
pub mod ratelimit;
pub mod reactor;
pub mod rng;
pub mod sim;
pub mod storage;
pub mod tls;
pub mod tracker;
pub mod wire;
