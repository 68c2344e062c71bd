//! Private swarms (spec/tls.md): the swarm authority that issues
//! certificates ([`ca`]), the rustls configurations a daemon builds from
//! its certificate, key and CA ([`config`], read from files by [`files`]),
//! and one TLS session as a sans-IO byte pump ([`link`]) that the reactor
//! drives.

pub mod ca;
pub mod config;
mod error;
pub mod files;
pub mod link;
pub mod torrent;

pub use config::TlsConfig;
pub use error::TlsError;
pub use link::TlsLink;

/// Whether `bytes` start like a TLS record (content type 20-23, version
/// 3.x): what a plain-text endpoint sees when a TLS one talks to it, worth
/// a hint in its log rather than a bare "frame too large".
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x14..=0x17, 3, 0..=4, ..])
}

#[cfg(test)]
mod tests;
