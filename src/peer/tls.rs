//! The TLS side of `sta-peerd`'s tracker sessions: its identity, and the
//! name each tracker's certificate must carry (the HOST of `--tracker
//! HOST:PORT`, as the user wrote it).

use crate::reactor::TlsDial;
use crate::tls::TlsConfig;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::SocketAddr;

pub struct TrackerTls {
    config: TlsConfig,
    names: HashMap<SocketAddr, ServerName<'static>>,
}

impl TrackerTls {
    /// `trackers`: each tracker's resolved address and the `HOST:PORT`
    /// it was given as.
    pub fn new(config: TlsConfig, trackers: &[(SocketAddr, &str)]) -> Result<TrackerTls, String> {
        let mut names = HashMap::new();
        for &(addr, given) in trackers {
            let host = host_of(given);
            let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                format!("tracker {given:?}: {host:?} cannot be checked against a certificate: {e}")
            })?;
            names.insert(addr, name);
        }
        Ok(TrackerTls { config, names })
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
