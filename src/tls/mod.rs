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

pub use config::TlsConfig;
pub use error::TlsError;
pub use link::TlsLink;

#[cfg(test)]
mod tests;
