//! The TLS side of `sta-peerd`: its identity; for tracker sessions, the
//! name each tracker's certificate must carry (the HOST of `--tracker
//! HOST:PORT`, as the user wrote it); for peer links, the listeners that
//! serve TLS and the dial of a peer of one file (SNI = its info hash, the
//! peer's certificate for its name or `*`, spec/tls.md).

use crate::reactor::TlsDial;
use crate::tls::TlsConfig;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::SocketAddr;

pub struct DaemonTls {
    config: TlsConfig,
    names: HashMap<SocketAddr, ServerName<'static>>,
    /// The peer listeners, which serve TLS only.
    pub peer_listeners: Vec<usize>,
}

impl DaemonTls {
    /// `trackers`: each tracker's resolved address and the `HOST:PORT`
    /// it was given as.
    pub fn new(
        config: TlsConfig,
        trackers: &[(SocketAddr, &str)],
        peer_listeners: Vec<usize>,
    ) -> Result<DaemonTls, String> {
        let mut names = HashMap::new();
        for &(addr, given) in trackers {
            let host = host_of(given);
            let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                format!("tracker {given:?}: {host:?} cannot be checked against a certificate: {e}")
            })?;
            names.insert(addr, name);
        }
        Ok(DaemonTls {
            config,
            names,
            peer_listeners,
        })
    }

    /// How to dial the tracker at `addr`: its certificate must carry the
    /// name it was given by, else its address.
    pub fn dial(&self, addr: SocketAddr) -> TlsDial {
        let name = self
            .names
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        TlsDial {
            config: self.config.client.clone(),
            name,
        }
    }

    /// How to dial a peer for the file `info_hash` named `name`.
    pub fn dial_peer(&self, info_hash: &[u8; 20], name: &str) -> Result<TlsDial, String> {
        let config =
            crate::tls::torrent::client_for(&self.config, name).map_err(|e| e.to_string())?;
        let name = crate::tls::torrent::server_name(info_hash)
            .ok_or_else(|| "an info hash that is no server name".to_string())?;
        Ok(TlsDial { config, name })
    }

    /// Our server configuration, for the peer listeners.
    pub fn server(&self) -> std::sync::Arc<rustls::ServerConfig> {
        self.config.server.clone()
    }

    /// A SIGHUP's new identity, for the sessions opened from now on (an
    /// open session keeps going: certificates count at the handshake).
    pub fn replace(&mut self, config: TlsConfig) {
        self.config = config;
    }
}

/// `tracker.lab` of `tracker.lab:6969`, `::1` of `[::1]:6969`.
pub fn host_of(host_port: &str) -> &str {
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_is_what_precedes_the_port() {
        assert_eq!(host_of("tracker.lab:6969"), "tracker.lab");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
        assert_eq!(host_of("[::1]:6969"), "::1");
        assert_eq!(host_of("noport"), "noport");
    }
}
