//! Why a TLS session failed, in words an operator can act on. rustls's own
//! messages name the alert or the certificate error; ours add which side
//! refused and what to do about it.

use rustls::{AlertDescription, CertificateError, Error};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// We refused the other side (its certificate, its protocol).
    Refused(String),
    /// The other side refused us: it sent a fatal alert.
    RefusedUs(String),
    /// What arrived is not TLS at all (a plain-text client on a TLS port,
    /// or a plain-text server answering a TLS client).
    NotTls(String),
    /// The stream ended inside a record or before the handshake finished.
    Truncated,
    /// rustls could not start or keep the session (a bug or a bad config).
    Local(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Refused(why) => write!(f, "refused: {why}"),
            TlsError::RefusedUs(why) => write!(f, "the other side refused us: {why}"),
            TlsError::NotTls(why) => write!(f, "not TLS: {why}"),
            TlsError::Truncated => f.write_str(
                "the connection ended in the middle of a TLS record or handshake (cut, or not TLS)",
            ),
            TlsError::Local(why) => write!(f, "TLS error: {why}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Turns what rustls said into a [`TlsError`].
pub fn classify(e: &Error) -> TlsError {
    match e {
        Error::InvalidCertificate(c) => TlsError::Refused(certificate(c)),
        Error::NoCertificatesPresented => TlsError::Refused(
            "it presented no certificate (give it --tls-cert and --tls-key)".into(),
        ),
        Error::AlertReceived(alert) => TlsError::RefusedUs(alert_text(*alert)),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => TlsError::NotTls(format!(
            "{e} (is the other side speaking plain text, or not using --tls-cert?)"
        )),
        Error::PeerIncompatible(_) => TlsError::Refused(format!(
            "{e} (STA speaks TLS 1.3 only, with client certificates)"
        )),
        Error::PeerMisbehaved(_) | Error::DecryptError | Error::PeerSentOversizedRecord => {
            TlsError::Refused(format!("{e} (corrupt or forged records)"))
        }
        _ => TlsError::Local(e.to_string()),
    }
}

fn certificate(c: &CertificateError) -> String {
    use CertificateError as C;
    match c {
        C::UnknownIssuer => {
            "its certificate is not signed by this swarm's CA (--tls-ca): it belongs to another swarm, or to none".into()
        }
        C::Expired | C::ExpiredContext { .. } => {
            format!("its certificate has expired ({c}); issue it a new one with `sta ca issue`")
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            format!("its certificate is not valid yet ({c}); are both clocks right?")
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => format!(
            "its certificate is not for the name we dialed ({c}); issue it with that --name"
        ),
        C::BadSignature | C::UnsupportedSignatureAlgorithmContext { .. } => {
            format!("its certificate's signature does not verify ({c})")
        }
        _ => format!("its certificate is invalid: {c}"),
    }
}

fn alert_text(alert: AlertDescription) -> String {
    use AlertDescription as A;
    let why = match alert {
        A::UnknownCA => {
            "it does not trust the CA that signed our certificate (another swarm's CA?)"
        }
        A::CertificateExpired => {
            "it says our certificate has expired; issue a new one with `sta ca issue` and send SIGHUP"
        }
        A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown => {
            "it does not accept our certificate"
        }
        A::CertificateRequired => "it requires a client certificate (--tls-cert, --tls-key)",
        A::ProtocolVersion => "it does not speak TLS 1.3",
        A::HandshakeFailure => "no common TLS parameters (is it configured for TLS 1.3?)",
        A::DecodeError | A::UnexpectedMessage => "it could not read what we sent",
        A::CloseNotify => "it closed the session",
        _ => "fatal alert",
    };
    format!("{why} (alert {alert:?})")
}
