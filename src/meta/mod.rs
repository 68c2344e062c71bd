//! File metadata: bencode, the BEP 3 single-file info dict and its info
//! hash, and the rules for names and piece sizes.

pub mod bencode;
pub mod info;

pub use info::{Info, InfoError};
