//! File metadata: bencode, the BEP 3 single-file info dict and its info
//! hash, the rules for names and piece sizes, `.torrent` files and magnet
//! links.

pub mod bencode;
pub mod info;
pub mod magnet;
pub mod torrent;

pub use info::{Info, InfoError};
