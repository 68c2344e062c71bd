//! A daemon's TLS identity (its certificate and key, and the swarm's CA)
//! turned into rustls configurations: mutual TLS 1.3 only, both ways. The
//! PEM comes in as bytes and the clock as a [`TimeProvider`], so this
//! reads no file and no clock of its own.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fmt;
use std::sync::Arc;

/// The client and server sides of one identity.
#[derive(Clone)]
pub struct TlsConfig {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
    /// The common name of our certificate, for logs.
    pub subject: String,
    /// When our certificate expires (Unix seconds).
    pub not_after: i64,
    /// The swarm's CA certificates (DER), in `--tls-ca` order: the first
    /// is what an SSL torrent's `ssl-cert` carries.
    pub ca: Vec<CertificateDer<'static>>,
    /// What a peer link's client configuration is made of (see
    /// [`super::torrent`]): the CA, our chain and key, the clock.
    pub(super) parts: Arc<Parts>,
}

pub(super) struct Parts {
    pub roots: Arc<RootCertStore>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub clock: Arc<dyn TimeProvider>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsConfig({}, until {})", self.subject, self.not_after)
    }
}

/// Which of the three inputs is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Cert,
    Key,
    Ca,
}

impl Part {
    pub fn flag(self) -> &'static str {
        match self {
            Part::Cert => "--tls-cert",
            Part::Key => "--tls-key",
            Part::Ca => "--tls-ca",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub part: Part,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.part.flag(), self.message)
    }
}

impl std::error::Error for ConfigError {}

fn fail(part: Part, message: impl Into<String>) -> ConfigError {
    ConfigError {
        part,
        message: message.into(),
    }
}

/// The cryptography STA uses: ring's, the one that builds with only a C
/// compiler (aws-lc-rs needs cmake and more), with AES-128-GCM preferred:
/// peer links carry gigabytes, and it costs less CPU per byte than
/// AES-256-GCM for a margin that does not matter here.
pub fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| match s.suite() {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        _ => 1,
    });
    Arc::new(provider)
}

/// Builds both configurations from PEM: `cert` (ours, maybe followed by
/// intermediates), `key` (ours) and `ca` (the swarm's CA certificates).
/// Our own certificate is checked against the CA at `clock`'s time, so a
/// daemon given an expired or foreign certificate says so at start
/// instead of at every handshake.
pub fn build(
    cert: &[u8],
    key: &[u8],
    ca: &[u8],
    clock: Arc<dyn TimeProvider>,
) -> Result<TlsConfig, ConfigError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| fail(Part::Cert, format!("not PEM certificates: {e}")))?;
    let Some(own) = chain.first() else {
        return Err(fail(Part::Cert, "no PEM certificate in it"));
    };
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| fail(Part::Key, format!("no PEM private key in it: {e}")))?;
    let mut roots = RootCertStore::empty();
    let mut ca_ders = Vec::new();
    for der in CertificateDer::pem_slice_iter(ca) {
        let der = der.map_err(|e| fail(Part::Ca, format!("not PEM certificates: {e}")))?;
        ca_ders.push(der.clone());
        roots
            .add(der)
            .map_err(|e| fail(Part::Ca, format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(fail(Part::Ca, "no PEM certificate in it"));
    }
    let roots = Arc::new(roots);
    let (subject, not_after) = describe(own)?;
    let provider = provider();

    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| fail(Part::Ca, e.to_string()))?;
    let now = clock
        .current_time()
        .unwrap_or_else(|| UnixTime::since_unix_epoch(std::time::Duration::ZERO));
    // Our certificate must be one the other side would take: the same
    // check it will make, done once here.
    client_verifier
        .verify_client_cert(own, &chain[1..], now)
        .map_err(|e| fail(Part::Cert, own_certificate(&e, &subject)))?;

    let server = ServerConfig::builder_with_details(provider.clone(), clock.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| fail(Part::Cert, e.to_string()))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| fail(Part::Key, format!("does not fit the certificate: {e}")))?;
    let client = ClientConfig::builder_with_details(provider, clock.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| fail(Part::Cert, e.to_string()))?
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(chain.clone(), key.clone_key())
        .map_err(|e| fail(Part::Key, format!("does not fit the certificate: {e}")))?;
    Ok(TlsConfig {
        server: Arc::new(server),
        client: Arc::new(client),
        subject,
        not_after,
        ca: ca_ders,
        parts: Arc::new(Parts {
            roots,
            chain,
            key,
            clock,
        }),
    })
}

fn own_certificate(e: &rustls::Error, subject: &str) -> String {
    let why = match super::error::classify(e) {
        super::TlsError::Refused(why) => why.replacen("its certificate", "the certificate", 1),
        other => other.to_string(),
    };
    format!("{subject:?}: {why}")
}

/// The common name and expiry of a certificate.
fn describe(der: &CertificateDer<'_>) -> Result<(String, i64), ConfigError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| fail(Part::Cert, format!("not an X.509 certificate: {e}")))?;
    let subject = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("(no common name)")
        .to_owned();
    Ok((subject, cert.validity().not_after.timestamp()))
}

/// A clock for configurations built for tests: always `secs` after 1970.
#[derive(Debug)]
pub struct FixedClock(pub u64);

impl TimeProvider for FixedClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            self.0,
        )))
    }
}
