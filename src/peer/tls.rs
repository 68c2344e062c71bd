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

    /// The swarm's CA, for the `ssl-cert` of SSL torrents.
    pub fn swarm_ca(&self) -> Option<crate::tls::torrent::SwarmCa> {
        crate::tls::torrent::SwarmCa::of(&self.config)
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

/// Whether the BEP 3 handshake at the start of `input` is for
/// `info_hash` (bytes 28 to 48); `None` until those bytes are in. A TLS
/// peer link admitted for one file (its SNI, its certificate's name) must
/// not trade another.
pub fn handshake_is_for(input: &[u8], info_hash: &[u8; 20]) -> Option<bool> {
    input.get(28..48).map(|h| h == info_hash)
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
    fn a_handshake_is_checked_once_its_info_hash_is_in() {
        use super::handshake_is_for;
        let mut hs = vec![19];
        hs.extend_from_slice(b"BitTorrent protocol");
        hs.extend_from_slice(&[0; 8]);
        assert_eq!(handshake_is_for(&hs, &[7; 20]), None);
        hs.extend_from_slice(&[7; 20]);
        assert_eq!(handshake_is_for(&hs, &[7; 20]), Some(true));
        assert_eq!(handshake_is_for(&hs, &[8; 20]), Some(false));
    }

    #[test]
    fn the_host_is_what_precedes_the_port() {
        assert_eq!(host_of("tracker.lab:6969"), "tracker.lab");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
        assert_eq!(host_of("[::1]:6969"), "::1");
        assert_eq!(host_of("noport"), "noport");
    }
}
