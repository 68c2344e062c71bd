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

/// Says which certificate is in use and until when; warns when it
/// expires within a day, so the operator renews it before peers refuse it.
pub fn log_loaded(config: &TlsConfig, now_secs: i64, context: &str) {
    let left = config.not_after - now_secs;
    let until = utc(config.not_after);
    if left < 86_400 {
        log::warn!(
            "{context}TLS certificate {:?} expires {until} (in {} minutes): issue a new one with `sta ca issue` and send SIGHUP",
            config.subject,
            left.max(0) / 60
        );
    } else {
        log::info!(
            "{context}TLS certificate {:?}, valid until {until} ({:.1} days)",
            config.subject,
            left as f64 / 86_400.0
        );
    }
}

/// `2026-12-08 18:11 UTC`.
fn utc(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => format!("at Unix time {secs}"),
    }
}

/// The system clock in Unix seconds (0 if it is before 1970).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// SIGHUP: the TLS identity again, from `files` as the configuration now
/// gives them. `in_use`: the daemon runs TLS (turning it on or off takes
/// a restart: the listeners and the tracker session change meaning).
/// `None` (logged why) leaves the identity in use as it is.
pub fn reload(files: Result<Option<TlsFiles>, String>, in_use: bool) -> Option<TlsConfig> {
    match (files, in_use) {
        (Err(e), _) => log::warn!("reload: {e}; keeping TLS as it is"),
        (Ok(None), false) => {}
        (Ok(None), true) => log::warn!(
            "reload: the TLS settings are gone, but turning TLS off takes a restart; keeping the certificate in use"
        ),
        (Ok(Some(_)), false) => {
            log::warn!("reload: TLS settings given, but turning TLS on takes a restart")
        }
        (Ok(Some(files)), true) => match files.load() {
            Ok(config) => {
                log_loaded(&config, now_secs(), "reload: ");
                return Some(config);
            }
            Err(e) => log::warn!("reload: {e}; keeping the TLS certificate in use"),
        },
    }
    None
}
