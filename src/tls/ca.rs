//! The swarm authority: a CA key and self-signed certificate, and the
//! short-lived host certificates it signs (spec/tls.md). Pure functions of
//! their inputs and `now`: the CLI reads and writes the files.
//!
//! The CA never signs a request: the operator names the host, and a fresh
//! key is made for it here, so no identity is ever taken from a stranger.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha1::{Digest, Sha1};
use std::fmt;
use time::OffsetDateTime;

/// A CA certificate lives long: re-issuing it means re-issuing every host's.
pub const CA_DAYS: u32 = 3650;
/// Host certificates are short-lived, so a stolen one is soon worthless;
/// daemons reload them on SIGHUP before they expire.
pub const DEFAULT_HOST_DAYS: u32 = 7;
/// A certificate issued for more than this is no longer "short-lived".
pub const MAX_HOST_DAYS: u32 = 366;
/// Certificates start this long before `now`, so a host whose clock is a
/// little behind the CA's accepts them at once.
const BACKDATE_SECS: i64 = 3600;

const DAY_SECS: i64 = 86_400;

/// A certificate and its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug)]
pub struct CaError(pub String);

impl fmt::Display for CaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaError {}

fn rcgen_error(what: &str) -> impl Fn(rcgen::Error) -> CaError + '_ {
    move |e| CaError(format!("{what}: {e}"))
}

fn validity(now_secs: i64, days: u32) -> Result<(OffsetDateTime, OffsetDateTime), CaError> {
    let start = OffsetDateTime::from_unix_timestamp(now_secs - BACKDATE_SECS)
        .map_err(|e| CaError(format!("the clock is out of range: {e}")))?;
    let end = OffsetDateTime::from_unix_timestamp(now_secs + i64::from(days) * DAY_SECS)
        .map_err(|e| CaError(format!("the validity ends out of range: {e}")))?;
    Ok((start, end))
}

/// A new CA, valid from (about) `now_secs` (Unix time) for `days`. Its
/// name carries a digest of its key, so two swarms' CAs never share one.
pub fn new_ca(now_secs: i64, days: u32) -> Result<Issued, CaError> {
    let key = KeyPair::generate().map_err(rcgen_error("cannot make the CA key"))?;
    let digest = Sha1::digest(key.public_key_raw());
    let id: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("STA swarm CA {id}"));
    params.distinguished_name = dn;
    // Path length 0: it signs hosts, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params.not_before, params.not_after) = validity(now_secs, days)?;
    let cert = params
        .self_signed(&key)
        .map_err(rcgen_error("cannot sign the CA certificate"))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Checks a host name the operator gave: a DNS name, an IP address, or `*`
/// (libtorrent's "any torrent" name for peer certificates).
pub fn check_name(name: &str) -> Result<(), CaError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._*:".contains(&b));
    match ok {
        true => Ok(()),
        false => Err(CaError(format!(
            "--name {name:?}: give a host name, an IP address or `*` (letters, digits, - . _ * : only)"
        ))),
    }
}

/// A host certificate for `names` (the first is also its common name),
/// valid from (about) `now_secs` for `days`, signed by the CA whose
/// certificate and key are given (PEM), with a fresh key. It serves both
/// ways: a daemon is a TLS server to some and a client to others.
pub fn issue(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    names: &[String],
    now_secs: i64,
    days: u32,
) -> Result<Issued, CaError> {
    let Some(first) = names.first() else {
        return Err(CaError("give at least one --name".into()));
    };
    for name in names {
        check_name(name)?;
    }
    if days == 0 || days > MAX_HOST_DAYS {
        return Err(CaError(format!(
            "--days {days}: from 1 to {MAX_HOST_DAYS} (host certificates are short-lived)"
        )));
    }
    let ca_key = KeyPair::from_pem(ca_key_pem)
        .map_err(|e| CaError(format!("the CA key is not a PEM private key: {e}")))?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, &ca_key)
        .map_err(|e| CaError(format!("the CA certificate is not a PEM certificate: {e}")))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first.as_str());
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n
                .as_str()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| CaError(format!("--name {n:?}: {e}"))),
        })
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity(now_secs, days)?;
    let key = KeyPair::generate().map_err(rcgen_error("cannot make the host key"))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(rcgen_error("cannot sign the host certificate"))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn host_names_are_checked() {
        assert!(check_name("tracker.lab").is_ok());
        assert!(check_name("10.0.0.1").is_ok());
        assert!(check_name("*").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("../etc").is_err());
    }

    #[test]
    fn issue_refuses_what_was_not_asked_or_is_too_long() {
        let ca = new_ca(NOW, CA_DAYS).unwrap();
        let e = issue(&ca.cert_pem, &ca.key_pem, &[], NOW, 7).err().unwrap();
        assert!(e.0.contains("--name"), "{e}");
        let names = ["h".to_string()];
        let e = issue(&ca.cert_pem, &ca.key_pem, &names, NOW, 400)
            .err()
            .unwrap();
        assert!(e.0.contains("short-lived"), "{e}");
        let e = issue("junk", &ca.key_pem, &names, NOW, 7).err().unwrap();
        assert!(e.0.contains("CA certificate"), "{e}");
        let e = issue(&ca.cert_pem, "junk", &names, NOW, 7).err().unwrap();
        assert!(e.0.contains("CA key"), "{e}");
    }

    #[test]
    fn two_cas_have_different_names() {
        let a = new_ca(NOW, CA_DAYS).unwrap();
        let b = new_ca(NOW, CA_DAYS).unwrap();
        assert_ne!(a.cert_pem, b.cert_pem);
        assert!(a.key_pem.contains("PRIVATE KEY"));
    }
}
