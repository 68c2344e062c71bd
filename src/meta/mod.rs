//! File metadata: bencode, the BEP 3 info dict (one file or a tree) and
//! its info hash, the rules for names, paths and piece sizes, where pieces
//! and blocks lie in the bytes, `.torrent` files and magnet links.

pub mod bencode;
pub mod files;
pub mod geometry;
pub mod glob;
pub mod info;
pub mod magnet;
pub mod paths;
pub mod torrent;

pub use files::FileEntry;
pub use geometry::Geometry;
pub use info::{Info, InfoError};
