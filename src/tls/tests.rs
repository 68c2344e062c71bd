//! Two in-memory endpoints, a client and a server, driven by hand: no
//! socket, and a fixed clock so expiry is tested exactly.

use super::ca::{self, Issued};
use super::config::{self, FixedClock, TlsConfig};
use super::{TlsError, TlsLink};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

struct Swarm {
    ca: Issued,
}

impl Swarm {
    fn new() -> Swarm {
        Swarm {
            ca: ca::new_ca(NOW - 30 * DAY, ca::CA_DAYS).unwrap(),
        }
    }

    fn host(&self, name: &str) -> Issued {
        ca::issue(&self.ca.cert_pem, &self.ca.key_pem, &[name.into()], NOW, 7).unwrap()
    }
}

fn identity(host: &Issued, ca_pem: &str, at: i64) -> Result<TlsConfig, config::ConfigError> {
    config::build(
        host.cert_pem.as_bytes(),
        host.key_pem.as_bytes(),
        ca_pem.as_bytes(),
        Arc::new(FixedClock(at as u64)),
    )
}

fn pair(server: &TlsConfig, client: &TlsConfig, name: &str) -> (TlsLink, TlsLink) {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    (
        TlsLink::server(server.server.clone()).unwrap(),
        TlsLink::client(client.client.clone(), name).unwrap(),
    )
}

/// Carries ciphertext both ways until neither side has more; the first
/// error of each side is returned.
fn pump(s: &mut TlsLink, c: &mut TlsLink) -> (Result<(), TlsError>, Result<(), TlsError>) {
    let (mut s_result, mut c_result) = (Ok(()), Ok(()));
    for _ in 0..20 {
        let mut to_server = Vec::new();
        c.transmit(&mut to_server);
        let mut to_client = Vec::new();
        s.transmit(&mut to_client);
        if to_server.is_empty() && to_client.is_empty() {
            break;
        }
        if s_result.is_ok() && !to_server.is_empty() {
            s_result = s.receive(&to_server);
        }
        if c_result.is_ok() && !to_client.is_empty() {
            c_result = c.receive(&to_client);
        }
    }
    (s_result, c_result)
}

fn received(link: &mut TlsLink) -> Vec<u8> {
    let mut v = Vec::new();
    link.take_received(&mut v);
    v
}

fn two_hosts() -> (Swarm, TlsConfig, TlsConfig) {
    let swarm = Swarm::new();
    let server = identity(&swarm.host("tracker.lab"), &swarm.ca.cert_pem, NOW).unwrap();
    let client = identity(&swarm.host("peer1"), &swarm.ca.cert_pem, NOW).unwrap();
    (swarm, server, client)
}

#[test]
fn handshake_then_data_both_ways() {
    let (_swarm, server, client) = two_hosts();
    assert_eq!(server.subject, "tracker.lab");
    assert_eq!(server.not_after, NOW + 7 * DAY);
    let (mut s, mut c) = pair(&server, &client, "tracker.lab");
    // Written before the handshake: held until it is done.
    assert_eq!(c.send(b"hello"), 5);
    let (rs, rc) = pump(&mut s, &mut c);
    assert_eq!((rs, rc), (Ok(()), Ok(())));
    assert!(!s.is_handshaking() && !c.is_handshaking());
    assert_eq!(received(&mut s), b"hello");
    assert_eq!(s.peer_name().as_deref(), Some("peer1"));
    assert_eq!(c.peer_name().as_deref(), Some("tracker.lab"));

    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    for _ in 0..100 {
        sent += s.send(&big[sent..]);
        let (rs, rc) = pump(&mut s, &mut c);
        assert_eq!((rs, rc), (Ok(()), Ok(())));
        c.take_received(&mut got);
        if sent == big.len() {
            break;
        }
    }
    assert_eq!(got, big);

    c.close();
    let (rs, _) = pump(&mut s, &mut c);
    assert_eq!(rs, Ok(()));
    assert_eq!(s.end_of_input(), Ok(()), "a close_notify is a clean end");
}

/// A handshaken pair, nothing left in flight.
fn established() -> (TlsLink, TlsLink) {
    let (_swarm, server, client) = two_hosts();
    let (mut s, mut c) = pair(&server, &client, "tracker.lab");
    assert_eq!(pump(&mut s, &mut c), (Ok(()), Ok(())));
    assert!(!s.is_handshaking() && !c.is_handshaking());
    (s, c)
}

#[test]
fn plaintext_fills_the_readers_buffer_and_the_rest_waits_in_order() {
    let (mut s, mut c) = established();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(s.send(&big[..60_000]), 60_000);
    let mut wire = Vec::new();
    s.transmit(&mut wire);
    let mut out = vec![0u8; 10_000];
    assert_eq!(c.receive_into(&wire, &mut out), Ok(10_000));
    assert!(c.has_received());
    // More arrives while some waits: it goes after, not into `out`.
    assert_eq!(s.send(&big[60_000..]), 40_000);
    wire.clear();
    s.transmit(&mut wire);
    assert_eq!(c.receive_into(&wire, &mut out[..0]), Ok(0));
    let mut got = out.clone();
    let mut part = vec![0u8; 7_000];
    while c.has_received() {
        let n = c.read_received(&mut part);
        got.extend_from_slice(&part[..n]);
    }
    assert_eq!(c.read_received(&mut part), 0);
    assert_eq!(got, big);
}

#[test]
fn a_vectored_send_fills_records_across_its_slices() {
    let (mut s, mut c) = established();
    let (head, body) = ([7u8; 13], [9u8; 1000]);
    let slices = [std::io::IoSlice::new(&head), std::io::IoSlice::new(&body)];
    assert_eq!(s.send_vectored(&slices), 1013);
    let mut wire = Vec::new();
    s.transmit(&mut wire);
    // One record: a 5-byte header, the content type and a 16-byte tag
    // around the 1013 bytes (two records would take 22 bytes more).
    assert_eq!(wire.len(), 5 + 1013 + 1 + 16);
    c.receive(&wire).unwrap();
    assert_eq!(received(&mut c), [&head[..], &body[..]].concat());
}

#[test]
fn the_output_limit_caps_what_a_send_takes() {
    let (mut s, _c) = established();
    s.set_output_limit(64 * 1024);
    let big = vec![1u8; 256 * 1024];
    let taken = s.send(&big);
    assert!(taken > 0 && taken <= 64 * 1024, "took {taken}");
    assert!(s.wants_write());
    assert_eq!(s.send(&big), 0, "full until the socket takes some");
    let mut wire = Vec::new();
    s.transmit(&mut wire);
    assert!(!s.wants_write());
    assert!(s.send(&big) > 0);
}

#[test]
fn a_certificate_of_another_ca_is_refused_and_the_client_is_told() {
    let ours = Swarm::new();
    let theirs = Swarm::new();
    let server = identity(&ours.host("tracker.lab"), &ours.ca.cert_pem, NOW).unwrap();
    // The stranger trusts our CA (so it accepts the server) but its own
    // certificate comes from its CA.
    let both = format!("{}{}", theirs.ca.cert_pem, ours.ca.cert_pem);
    let stranger = identity(&theirs.host("intruder"), &both, NOW).unwrap();
    let (mut s, mut c) = pair(&server, &stranger, "tracker.lab");
    c.send(b"let me in");
    let (rs, rc) = pump(&mut s, &mut c);
    let TlsError::Refused(why) = rs.unwrap_err() else {
        panic!("the server should refuse")
    };
    assert!(why.contains("not signed by this swarm's CA"), "{why}");
    let TlsError::RefusedUs(why) = rc.unwrap_err() else {
        panic!("the client should hear why")
    };
    assert!(why.contains("UnknownCA"), "{why}");
    assert!(
        received(&mut s).is_empty(),
        "nothing of the stranger's got through"
    );
}

#[test]
fn a_server_of_another_ca_is_refused_by_the_client() {
    let ours = Swarm::new();
    let theirs = Swarm::new();
    let fake = identity(&theirs.host("tracker.lab"), &theirs.ca.cert_pem, NOW).unwrap();
    let client = identity(&ours.host("peer1"), &ours.ca.cert_pem, NOW).unwrap();
    let (mut s, mut c) = pair(&fake, &client, "tracker.lab");
    let (rs, rc) = pump(&mut s, &mut c);
    assert!(
        matches!(rc, Err(TlsError::Refused(ref w)) if w.contains("not signed")),
        "{rc:?}"
    );
    assert!(matches!(rs, Err(TlsError::RefusedUs(_))), "{rs:?}");
}

#[test]
fn an_expired_certificate_is_refused_at_load_and_in_a_handshake() {
    let swarm = Swarm::new();
    // Valid at both clocks, so only the client's certificate is at fault.
    let long = ca::issue(
        &swarm.ca.cert_pem,
        &swarm.ca.key_pem,
        &["tracker.lab".into()],
        NOW - 20 * DAY,
        30,
    )
    .unwrap();
    let server = identity(&long, &swarm.ca.cert_pem, NOW).unwrap();
    let old = ca::issue(
        &swarm.ca.cert_pem,
        &swarm.ca.key_pem,
        &["peer1".into()],
        NOW - 10 * DAY,
        2,
    )
    .unwrap();
    let e = identity(&old, &swarm.ca.cert_pem, NOW).unwrap_err();
    assert_eq!(e.part, config::Part::Cert);
    assert!(e.message.contains("expired"), "{e}");
    // A client whose clock is behind still offers it: the server refuses.
    let client = identity(&old, &swarm.ca.cert_pem, NOW - 9 * DAY).unwrap();
    let (mut s, mut c) = pair(&server, &client, "tracker.lab");
    let (rs, rc) = pump(&mut s, &mut c);
    assert!(
        matches!(rs, Err(TlsError::Refused(ref w)) if w.contains("expired")),
        "{rs:?}"
    );
    assert!(
        matches!(rc, Err(TlsError::RefusedUs(ref w)) if w.contains("CertificateExpired")),
        "{rc:?}"
    );
}

#[test]
fn a_server_certificate_for_another_name_is_refused() {
    let (_swarm, server, client) = two_hosts();
    let (mut s, mut c) = pair(&server, &client, "other.lab");
    let (rs, rc) = pump(&mut s, &mut c);
    assert!(
        matches!(rc, Err(TlsError::Refused(ref w)) if w.contains("not for the name")),
        "{rc:?}"
    );
    assert!(
        matches!(rs, Err(TlsError::RefusedUs(ref w)) if w.contains("BadCertificate")),
        "{rs:?}"
    );
}

#[test]
fn plain_text_on_a_tls_endpoint_is_refused_with_an_alert() {
    let (_swarm, server, _) = two_hosts();
    let mut s = TlsLink::server(server.server.clone()).unwrap();
    // An STA tracker frame: length, id, payload.
    let e = s.receive(b"\x00\x00\x00\x05\x01hello").unwrap_err();
    assert!(matches!(e, TlsError::NotTls(_)), "{e:?}");
    let mut alert = Vec::new();
    s.transmit(&mut alert);
    assert_eq!(
        alert.first(),
        Some(&0x15),
        "an alert record tells the sender"
    );
    assert!(
        s.receive(b"more").is_err(),
        "a failed session takes nothing more"
    );
    assert!(received(&mut s).is_empty());
}

#[test]
fn a_tls_client_answered_in_plain_text_says_so() {
    let (_swarm, _, client) = two_hosts();
    let name = ServerName::try_from("tracker.lab").unwrap();
    let mut c = TlsLink::client(client.client.clone(), name).unwrap();
    // What a plain-text tracker answers to a ClientHello: an error frame.
    let e = c
        .receive(b"\x00\x00\x00\x0a\xff\x00\x01too large")
        .unwrap_err();
    assert!(matches!(e, TlsError::NotTls(_)), "{e:?}");
}

#[test]
fn truncated_records_wait_for_the_rest_and_an_end_there_is_an_error() {
    let (_swarm, server, client) = two_hosts();
    // Cut in the handshake.
    let (mut s, mut c) = pair(&server, &client, "tracker.lab");
    let mut hello = Vec::new();
    c.transmit(&mut hello);
    s.receive(&hello[..hello.len() / 2]).unwrap();
    let mut nothing = Vec::new();
    s.transmit(&mut nothing);
    assert!(nothing.is_empty(), "half a ClientHello gets no answer yet");
    assert_eq!(s.end_of_input(), Err(TlsError::Truncated));

    // Cut in a data record; the rest of it completes it.
    let (mut s, mut c) = pair(&server, &client, "tracker.lab");
    assert_eq!(pump(&mut s, &mut c), (Ok(()), Ok(())));
    c.send(b"a whole request");
    let mut record = Vec::new();
    c.transmit(&mut record);
    let (head, tail) = record.split_at(record.len() - 3);
    s.receive(head).unwrap();
    assert!(!s.has_received());
    s.receive(tail).unwrap();
    assert_eq!(received(&mut s), b"a whole request");
    c.send(b"cut");
    let mut record = Vec::new();
    c.transmit(&mut record);
    s.receive(&record[..4]).unwrap();
    assert_eq!(s.end_of_input(), Err(TlsError::Truncated));
}

#[test]
fn garbage_is_refused_whatever_it_looks_like() {
    let (_swarm, server, client) = two_hosts();
    // Looks like a handshake record, is not one.
    let mut s = TlsLink::server(server.server.clone()).unwrap();
    let mut junk = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    assert!(s.receive(&junk).is_err());

    // A record of the session with one byte flipped.
    let (mut s, mut c) = pair(&server, &client, "tracker.lab");
    assert_eq!(pump(&mut s, &mut c), (Ok(()), Ok(())));
    c.send(b"precious");
    let mut record = Vec::new();
    c.transmit(&mut record);
    let last = record.len() - 1;
    record[last] ^= 1;
    let e = s.receive(&record).unwrap_err();
    assert!(matches!(e, TlsError::Refused(_)), "{e:?}");
    assert!(received(&mut s).is_empty());

    // Every prefix of a byte soup ends in an error or a wait, never a panic.
    let soup: Vec<u8> = (0..2000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for cut in [1, 5, 17, 300, 2000] {
        let mut s = TlsLink::server(server.server.clone()).unwrap();
        let _ = s.receive(&soup[..cut]);
        assert!(!s.has_received());
    }
}

#[test]
fn tls_records_are_told_from_sta_frames() {
    assert!(super::looks_like_tls(&[0x16, 3, 1, 0, 200]));
    assert!(super::looks_like_tls(&[0x15, 3, 3, 0, 2, 2, 48]));
    assert!(!super::looks_like_tls(b"\x00\x00\x00\x05\x01hello"));
    assert!(!super::looks_like_tls(b"status\n"));
    assert!(!super::looks_like_tls(&[0x16]));
}

#[test]
fn a_client_without_a_certificate_is_refused() {
    let (swarm, server, _) = two_hosts();
    let mut roots = rustls::RootCertStore::empty();
    for der in rustls::pki_types::CertificateDer::pem_slice_iter(swarm.ca.cert_pem.as_bytes()) {
        roots.add(der.unwrap()).unwrap();
    }
    let anonymous = rustls::ClientConfig::builder_with_details(
        config::provider(),
        Arc::new(FixedClock(NOW as u64)),
    )
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("tracker.lab").unwrap();
    let mut c = TlsLink::client(Arc::new(anonymous), name).unwrap();
    let mut s = TlsLink::server(server.server.clone()).unwrap();
    c.send(b"anyone?");
    let (rs, rc) = pump(&mut s, &mut c);
    assert!(
        matches!(rs, Err(TlsError::Refused(ref w)) if w.contains("no certificate")),
        "{rs:?}"
    );
    assert!(
        matches!(rc, Err(TlsError::RefusedUs(ref w)) if w.contains("CertificateRequired")),
        "{rc:?}"
    );
    assert!(received(&mut s).is_empty());
}

/// Peer links (libtorrent's SSL torrents): SNI is the info hash, and the
/// server's certificate must carry the file's name or `*`.
#[test]
fn a_peer_link_client_wants_the_file_name_or_star_in_the_server_certificate() {
    use super::torrent;
    let swarm = Swarm::new();
    let client = identity(&swarm.host("peer1"), &swarm.ca.cert_pem, NOW).unwrap();
    let hash = [0xab; 20];
    for (names, ok) in [
        (vec!["seed".to_string(), "*".into()], true),
        (vec!["seed".to_string(), "disk.img".into()], true),
        (vec!["seed".to_string()], false),
    ] {
        let cert = ca::issue(&swarm.ca.cert_pem, &swarm.ca.key_pem, &names, NOW, 7).unwrap();
        let server = identity(&cert, &swarm.ca.cert_pem, NOW).unwrap();
        let config = torrent::client_for(&client, "disk.img").unwrap();
        let mut c = TlsLink::client(config, torrent::server_name(&hash).unwrap()).unwrap();
        let mut s = TlsLink::server(server.server.clone()).unwrap();
        let (rs, rc) = pump(&mut s, &mut c);
        assert_eq!(s.sni(), Some(torrent::sni_of(&hash).as_str()));
        match ok {
            true => {
                assert_eq!((&rs, &rc), (&Ok(()), &Ok(())), "{names:?}");
                assert!(torrent::may_join(&s.peer_names(), "peer1"));
            }
            false => assert!(
                matches!(rc, Err(TlsError::Refused(ref w)) if w.contains("not for the name")),
                "{names:?}: {rc:?}"
            ),
        }
    }
    assert_eq!(torrent::info_hash_of(&torrent::sni_of(&hash)), Some(hash));
    assert_eq!(torrent::info_hash_of("tracker.lab"), None);
    assert_eq!(torrent::info_hash_of(&"g".repeat(40)), None);
}

#[test]
fn a_share_carries_the_swarm_ca_in_ssl_cert_and_only_that_ca_is_admitted() {
    use super::torrent::SwarmCa;
    use crate::meta::Info;
    let (swarm, a, _) = two_hosts();
    let ca = SwarmCa::of(&a).unwrap();
    // Our PEM is rcgen's certificate byte for byte once read back, and
    // the one rcgen wrote is admitted though its text differs.
    assert!(ca.admits(&ca.pem));
    assert!(ca.admits(swarm.ca.cert_pem.as_bytes()));
    assert_eq!(SwarmCa::from_pem(&ca.pem), Some(ca.clone()));
    let other = Swarm::new();
    assert!(!ca.admits(other.ca.cert_pem.as_bytes()));
    assert!(!ca.admits(b"not PEM at all"));

    let plain = Info::new("f.bin", 20_000, 16_384, vec![3; 40]).unwrap();
    assert_eq!(plain.ssl_cert(), None);
    let ssl = plain.with_ssl_cert(&ca.pem).unwrap();
    assert_eq!(ssl.ssl_cert(), Some(&ca.pem[..]));
    assert_ne!(ssl.info_hash, plain.info_hash);
    assert_eq!(Info::from_bencoded(&ssl.bencoded).unwrap(), ssl);
    // Replacing keeps one key; a tree gets it after `pieces` too.
    let again = ssl.with_ssl_cert(b"x").unwrap();
    assert_eq!(again.ssl_cert(), Some(&b"x"[..]));
    assert_eq!(again.bencoded.len(), plain.bencoded.len() + 10 + 3);
    let files = vec![("a", 10), ("b", 10)];
    let tree = Info::new_tree(
        "t",
        &files.into_iter().collect::<crate::meta::files::Listing>(),
        16_384,
        vec![1; 20],
    )
    .unwrap();
    let tree = tree.with_ssl_cert(&ca.pem).unwrap();
    assert_eq!(tree.ssl_cert(), Some(&ca.pem[..]));
    assert_eq!(tree.files().len(), 2);
}

#[test]
fn an_ssl_cert_past_the_limit_is_refused() {
    use crate::limits::MAX_SSL_CERT;
    use crate::meta::{Info, InfoError};
    let plain = Info::new("f.bin", 1, 16_384, vec![3; 20]).unwrap();
    let big = vec![b'A'; MAX_SSL_CERT + 1];
    assert_eq!(
        plain.with_ssl_cert(&big),
        Err(InfoError::SslCertTooLarge(MAX_SSL_CERT + 1))
    );
    assert!(plain.with_ssl_cert(&big[..MAX_SSL_CERT]).is_ok());
    // The same dict read from bytes is refused alike.
    let mut dict = plain.bencoded[..plain.bencoded.len() - 1].to_vec();
    dict.extend_from_slice(format!("8:ssl-cert{}:", big.len()).as_bytes());
    dict.extend_from_slice(&big);
    dict.push(b'e');
    assert_eq!(
        Info::from_bencoded(&dict),
        Err(InfoError::SslCertTooLarge(MAX_SSL_CERT + 1))
    );
}
