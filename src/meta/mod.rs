//! File metadata: bencode, the BEP 3 single-file info dict and its info
//! hash, the rules for names and piece sizes, where pieces and blocks lie
//! in a file, `.torrent` files and magnet links.

pub mod bencode;
pub mod geometry;
pub mod info;
pub mod magnet;
pub mod torrent;

pub use geometry::Geometry;
pub use info::{Info, InfoError};
