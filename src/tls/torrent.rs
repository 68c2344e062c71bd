//! TLS on peer links, after libtorrent's SSL torrents: the client sends
//! SNI = the 40 hex digits of the info hash, and each side's certificate
//! must carry the torrent's name or `*` (besides being signed by the
//! swarm's CA). The server side checks the name once the handshake is
//! done ([`may_join`]); the client side in its verifier
//! ([`client_for`]).

use super::config::TlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// The swarm's CA as SSL torrents carry it: the PEM put in the info
/// dict's `ssl-cert` of our shares, and the certificates an SSL torrent's
/// `ssl-cert` must hold one of for us to join it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmCa {
    pub pem: Vec<u8>,
    ders: Vec<Vec<u8>>,
}

impl SwarmCa {
    /// The CA of `config`; the first `--tls-ca` certificate goes in
    /// `ssl-cert` (libtorrent builds its trust store from that key).
    pub fn of(config: &TlsConfig) -> Option<SwarmCa> {
        let first = config.ca.first()?;
        Some(SwarmCa {
            pem: pem_of(first),
            ders: config.ca.iter().map(|d| d.to_vec()).collect(),
        })
    }

    /// From PEM CA certificates (tests, and the simulator).
    pub fn from_pem(pem: &[u8]) -> Option<SwarmCa> {
        let ders = ders_of(pem);
        let first = ders.first()?;
        Some(SwarmCa {
            pem: pem_of(&CertificateDer::from(first.as_slice())),
            ders,
        })
    }

    /// Whether an SSL torrent's `ssl-cert` names this swarm: one of its
    /// certificates is one of ours, compared as DER (PEM line breaks and
    /// comments do not count).
    pub fn admits(&self, ssl_cert: &[u8]) -> bool {
        ders_of(ssl_cert).iter().any(|d| self.ders.contains(d))
    }
}

/// The certificates of PEM text, as DER; unreadable ones are skipped
/// (an `ssl-cert` that holds none of ours is refused either way).
fn ders_of(pem: &[u8]) -> Vec<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .map(|d| d.to_vec())
        .collect()
}

/// One certificate as PEM: base64 in lines of 64, as OpenSSL writes it
/// (libtorrent reads `ssl-cert` with OpenSSL's PEM reader).
pub fn pem_of(der: &CertificateDer<'_>) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                b64.push(b'=');
            }
        }
    }
    let mut out = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    for line in b64.chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
    out
}

/// The SNI of a torrent: its info hash in lower-case hex.
pub fn sni_of(info_hash: &[u8; 20]) -> String {
    info_hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The info hash an SNI names, if it is 40 hex digits.
pub fn info_hash_of(sni: &str) -> Option<[u8; 20]> {
    let bytes = sni.as_bytes();
    if bytes.len() != 40 {
        return None;
    }
    let mut hash = [0; 20];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        hash[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(hash)
}

/// Whether a certificate with `names` may trade `torrent`: it carries
/// the torrent's name or `*`.
pub fn may_join(names: &[String], torrent: &str) -> bool {
    names.iter().any(|n| n == "*" || n == torrent)
}

/// The common name and DNS names of a certificate.
pub fn names_of(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                names.push((*n).to_owned());
            }
        }
    }
    names
}

/// Our client configuration for a peer link of the torrent `name`: the
/// peer's certificate must be signed by the swarm's CA and carry `name`
/// or `*` (not the SNI, which is the info hash).
pub fn client_for(config: &TlsConfig, name: &str) -> Result<Arc<ClientConfig>, Error> {
    let parts = &config.parts;
    let provider = super::config::provider();
    let verifier = TorrentVerifier {
        roots: parts.roots.clone(),
        algorithms: provider.signature_verification_algorithms,
        torrent: name.to_owned(),
    };
    let client = ClientConfig::builder_with_details(provider, parts.clock.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(parts.chain.clone(), parts.key.clone_key())?;
    Ok(Arc::new(client))
}

/// The SNI to dial a peer of `info_hash` with.
pub fn server_name(info_hash: &[u8; 20]) -> Option<ServerName<'static>> {
    ServerName::try_from(sni_of(info_hash)).ok()
}

#[derive(Debug)]
struct TorrentVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    torrent: String,
}

impl ServerCertVerifier for TorrentVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if !may_join(&names_of(end_entity), &self.torrent) {
            return Err(Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
