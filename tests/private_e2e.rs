//! Private files (BEP 27) end to end: a TLS tracker serves one to TLS
//! sessions and refuses BitTorrent announces for it; a plain session (of
//! a plain tracker) may not announce one and never sees it.

mod common;

use common::tls::{sta_ca, tls_flags};
use common::*;
use sta::limits::DEFAULT_PIECE_LENGTH;
use sta::wire::tracker::{ErrorCode, Lookup, Pieces, Request, Response};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// Issues `name` (with `*` for peers) from the CA in `ca`; its --tls-* flags.
fn issue(ca: &Path, name: &str, star: bool) -> Vec<String> {
    let dir = ca.to_str().unwrap();
    let mut args = vec!["issue", "--name", name];
    if star {
        args.extend(["--name", "*"]);
    }
    args.extend(["--out", name, dir]);
    sta_ca(&args);
    tls_flags(ca, name, &ca.join("ca.crt"))
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

/// One HTTP announce for `hash`; the reply's body.
fn http_announce(addr: SocketAddr, hash: &[u8; 20]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "GET /announce?info_hash={}&peer_id={}&port=6881&uploaded=0&downloaded=0&left=10&compact=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        escape(hash),
        escape(b"-qB4500-httphttphttp"),
    );
    let _ = s.write_all(req.as_bytes());
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn a_private_file_is_for_tls_sessions_only() {
    let tmp = TempDir::new("private");
    let ca = tmp.subdir("ca");
    sta_ca(&["init", ca.to_str().unwrap()]);
    let mut flags = issue(&ca, "127.0.0.1", false);
    flags.extend(["--http-listen".into(), "127.0.0.1:0".into()]);
    let mut t = tracker(&strs(&flags));
    let http_addr: SocketAddr = t
        .next_stdout_line(Duration::from_secs(5))
        .and_then(|l| l.strip_prefix("http listening on ")?.parse().ok())
        .expect("http address");

    let src = tmp.subdir("src").join("private.bin");
    write_random_file(&src, 1 << 20, 27);
    let public = info_of_file(&src, DEFAULT_PIECE_LENGTH);
    let private = public.with_private().unwrap();
    assert!(private.private() && !public.private());

    let mut seed_flags = strs(&issue(&ca, "seed", true))
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    seed_flags.extend(["--private-shares".into(), "true".into()]);
    let seeder = spawn_peerd_with(t.addr, &tmp.subdir("s"), &[&src], &strs(&seed_flags));
    // Its info hash as shared: a TLS daemon's shares also carry the CA
    // (`ssl-cert`), so it is not `private`'s.
    let shared = seeder.wait_seeding("private.bin", Duration::from_secs(30));

    // A TLS session finds it and downloads it.
    let leecher = spawn_peerd_with(
        t.addr,
        &tmp.subdir("l"),
        &[],
        &strs(&issue(&ca, "leech", true)),
    );
    let got = leecher.sta(&["get", "private.bin"]).ok();
    let dest = leecher.dir.join("private.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    assert_same_file(&src, &dest);

    // A BitTorrent client (no certificate) is refused that hash, not the
    // public one.
    let refused = http_announce(http_addr, &shared.info_hash);
    assert!(refused.contains("failure reason"), "{refused}");
    assert!(refused.contains("private torrent"), "{refused}");
    let public_reply = http_announce(http_addr, &public.info_hash);
    assert!(!public_reply.contains("failure reason"), "{public_reply}");
    t.assert_running();
}

#[test]
fn a_plain_session_may_not_announce_a_private_file_and_never_sees_one() {
    let t = tracker(&[]);
    let info = make_file("hidden.bin", 40_000, 3).with_private().unwrap();
    let mut c = Client::connect(t.addr);
    c.hello(peer_id(1), 6881);
    let msg = c.call_err(
        &Request::Announce {
            info: info.bencoded.clone(),
            pieces: Pieces::All,
        },
        ErrorCode::PRIVATE_FILE,
    );
    assert!(msg.contains("private file (BEP 27)"), "{msg}");
    // The session goes on, and the file is nowhere.
    assert_eq!(c.list(0, 10, "").total, 0);
    c.call_err(
        &Request::GetMeta(Lookup::Hash(info.info_hash)),
        ErrorCode::FILE_NOT_FOUND,
    );
    let public = make_file("public.bin", 40_000, 4);
    c.announce(&public, Pieces::All);
    assert!(matches!(
        c.call(&Request::GetMeta(Lookup::Name("public.bin".into()))),
        Response::Meta { .. }
    ));
}
