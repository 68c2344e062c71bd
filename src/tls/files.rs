//! Reading a daemon's `--tls-cert`, `--tls-key` and `--tls-ca` files, with
//! errors that name the file and say what to do.

use super::config::{self, Part, TlsConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a daemon's TLS identity is, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsFiles {
    /// The files from the three settings: all or none (`None`).
    pub fn from_settings(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        ca: Option<PathBuf>,
    ) -> Result<Option<TlsFiles>, String> {
        match (cert, key, ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => Ok(Some(TlsFiles { cert, key, ca })),
            (cert, key, ca) => {
                let missing: Vec<&str> = [
                    (cert.is_none(), "--tls-cert"),
                    (key.is_none(), "--tls-key"),
                    (ca.is_none(), "--tls-ca"),
                ]
                .iter()
                .filter(|(m, _)| *m)
                .map(|(_, f)| *f)
                .collect();
                Err(format!(
                    "TLS needs --tls-cert, --tls-key and --tls-ca together; missing {} (see `sta ca --help`)",
                    missing.join(" and ")
                ))
            }
        }
    }

    fn path(&self, part: Part) -> &Path {
        match part {
            Part::Cert => &self.cert,
            Part::Key => &self.key,
            Part::Ca => &self.ca,
        }
    }

    /// Reads the three files and builds the configurations, checking our
    /// certificate against the CA at the system clock's time.
    pub fn load(&self) -> Result<TlsConfig, String> {
        let read = |part: Part| {
            let path = self.path(part);
            std::fs::read(path).map_err(|e| {
                format!(
                    "{} {}: cannot read it: {e} (make one with `sta ca init` / `sta ca issue`)",
                    part.flag(),
                    path.display()
                )
            })
        };
        let (cert, key, ca) = (read(Part::Cert)?, read(Part::Key)?, read(Part::Ca)?);
        let clock = Arc::new(rustls::time_provider::DefaultTimeProvider);
        config::build(&cert, &key, &ca, clock).map_err(|e| {
            format!(
                "{} {}: {}",
                e.part.flag(),
                self.path(e.part).display(),
                e.message
            )
        })
    }
}
