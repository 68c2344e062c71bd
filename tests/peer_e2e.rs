//! End to end: real `sta-trackerd`, `sta-peerd` and `sta` binaries on
//! 127.0.0.1 (port 0), moving real files. Every wait has a deadline and
//! every test has its own directories, so the tests run in parallel and a
//! broken daemon fails a test instead of hanging it.

mod common;

use common::*;
use sta::control::{ControlRequest, FileReport, FileState, Progress, Reply, code, percent_encode};
use sta::meta::Info;
use sta::meta::info::to_hex;
use sta::wire::peer::{Handshake, Message};
use sta::wire::tracker::Pieces;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const PIECE: u32 = 256 * 1024;
const PIECE_FLAG: &str = "262144";
/// Hashing a shared file of some hundreds of MiB, with other tests busy.
const SEED_TIMEOUT: Duration = Duration::from_secs(25);
/// A whole download.
const GET_TIMEOUT: Duration = Duration::from_secs(40);

/// The bytes a file report credits to each peer address.
fn credits(f: &FileReport) -> BTreeMap<SocketAddr, u64> {
    f.from_peers.iter().map(|b| (b.addr, b.bytes)).collect()
}

/// The `get` request line for `name` into `dir`.
fn get_line(name: &str, dir: &Path) -> String {
    ControlRequest::Get {
        target: name.into(),
        out_dir: Some(dir.to_owned()),
        only: Vec::new(),
        peers: Vec::new(),
    }
    .to_line()
}

/// Follows a `get` on the control socket to its end, calling `on` with
/// each progress event; returns the final reply.
fn follow(c: &mut ControlConn, deadline: Instant, mut on: impl FnMut(&Progress)) -> Reply {
    loop {
        assert!(Instant::now() < deadline, "download not done in time");
        match c.next_reply() {
            Some(Reply::Progress(p)) => on(&p),
            Some(other) => return other,
            None => panic!("control connection closed before the download ended"),
        }
    }
}

/// The final reply must be `done`; returns its file.
fn done_file(reply: Reply) -> FileReport {
    match reply {
        Reply::Ok(v) => {
            assert_eq!(v.get("event").and_then(|e| e.as_str()), Some("done"), "{v}");
            FileReport::from_json(v.get("file").expect("file")).expect("a FILE")
        }
        Reply::Err(e) => panic!("download failed: {e:?}"),
        Reply::Progress(p) => panic!("not a final reply: {p:?}"),
    }
}

/// Runs `sta --control SOCKET ARGS` on another thread.
fn sta_in_background(control: &Path, args: &[&str]) -> JoinHandle<StaRun> {
    sta_in_background_for(control, args, GET_TIMEOUT)
}

// ------------------------------------------------------------- 1. swarm

#[test]
fn three_seeders_one_leecher() {
    let start = Instant::now();
    let t = tracker(&[]);
    let tmp = TempDir::in_shm("three");
    let src = tmp.subdir("src").join("three.bin");
    let length = 64u64 << 20;
    write_random_file(&src, length, 1);
    let seeders: Vec<Peerd> = (0..3)
        .map(|i| {
            spawn_peerd_with(
                t.addr,
                &tmp.subdir(&format!("s{i}")),
                &[&src],
                &["--piece-size", PIECE_FLAG],
            )
        })
        .collect();
    wait_catalog(t.addr, "three.bin", 3, 3, SEED_TIMEOUT);
    let leecher = spawn_peerd(t.addr, &tmp.subdir("l"), &[]);

    let got = leecher.sta(&["get", "three.bin"]).ok();
    let dest = leecher.dir.join("three.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    assert_same_file(&src, &dest);
    assert!(!leecher.dir.join("three.bin.part").exists());
    assert!(!leecher.dir.join("three.bin.part.info").exists());

    let status = leecher.sta(&["status", "--json"]).ok();
    let v = sta::json::parse(status.stdout.trim()).expect("status --json is JSON");
    let report = sta::control::StatusReport::from_json(&v).expect("a status object");
    let f = report.files.iter().find(|f| f.name == "three.bin").unwrap();
    assert_eq!(f.state, FileState::Seeding);
    assert_eq!(f.have, f.pieces);
    let by = credits(f);
    for s in &seeders {
        let bytes = by.get(&s.listen).copied().unwrap_or(0);
        assert!(bytes > 0, "seeder {} contributed nothing: {by:?}", s.listen);
    }
    assert_eq!(by.values().sum::<u64>(), length, "{by:?}");
    eprintln!("three_seeders_one_leecher: {by:?} in {:?}", start.elapsed());
}

// --------------------------------------------------- 2. partial holders

/// Writes `dir/NAME.part` holding the real bytes of `pieces` (zeros
/// elsewhere) and `dir/NAME.part.info`, as an interrupted download would
/// have left them.
fn write_partial(dir: &Path, info: &Info, data: &[u8], pieces: std::ops::Range<u32>) {
    let mut part = vec![0u8; data.len()];
    let g = info.geometry();
    let at = |p: u32| g.piece_offset(p).min(g.length()) as usize;
    part[at(pieces.start)..at(pieces.end)].copy_from_slice(&data[at(pieces.start)..at(pieces.end)]);
    std::fs::write(dir.join(format!("{}.part", info.name)), part).unwrap();
    std::fs::write(dir.join(format!("{}.part.info", info.name)), &info.bencoded).unwrap();
}

#[test]
fn leecher_combines_two_partial_holders() {
    let t = tracker(&[]);
    let tmp = TempDir::new("halves");
    let data = random_bytes(32 << 20, 2);
    let info = info_for("halves.bin", &data, PIECE);
    let n = info.num_pieces();
    let half = n / 2;
    let d1 = tmp.subdir("p1");
    let d2 = tmp.subdir("p2");
    write_partial(&d1, &info, &data, 0..half);
    write_partial(&d2, &info, &data, half..n);
    // `--max-peers 0`: the holders dial no one, so they cannot complete
    // each other before the leecher comes; each still accepts it.
    let p1 = spawn_peerd_with(t.addr, &d1, &[], &["--max-peers", "0"]);
    let p2 = spawn_peerd_with(t.addr, &d2, &[], &["--max-peers", "0"]);
    for p in [&p1, &p2] {
        let f = wait_for("the resume check", SEED_TIMEOUT, || {
            p.file("halves.bin")
                .filter(|f| f.state == FileState::Downloading)
        });
        assert_eq!(f.have, half, "{f:?}");
        // The log reaches us through a pipe reader: wait for it, briefly.
        let line = format!("{half} of {n} pieces already verified on disk");
        wait_for(
            &format!("{line:?} in the log"),
            Duration::from_secs(5),
            || p.log().contains(&line).then_some(()),
        );
    }
    wait_catalog(t.addr, "halves.bin", 2, 0, SEED_TIMEOUT);

    let leecher = spawn_peerd(t.addr, &tmp.subdir("l"), &[]);
    leecher.sta(&["get", "halves.bin"]).ok();
    let dest = leecher.dir.join("halves.bin");
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        data,
        "downloaded bytes differ"
    );
    let by = credits(&leecher.file("halves.bin").unwrap());
    let half_bytes = u64::from(half) * u64::from(PIECE);
    assert_eq!(by.get(&p1.listen), Some(&half_bytes), "{by:?}");
    assert_eq!(
        by.get(&p2.listen),
        Some(&(data.len() as u64 - half_bytes)),
        "{by:?}"
    );
}

// ------------------------------------------------- 3. a seeder dies

#[test]
fn seeder_killed_mid_transfer() {
    let t = tracker(&[]);
    let tmp = TempDir::in_shm("killed-seeder");
    let src = tmp.subdir("src").join("big.bin");
    write_random_file(&src, 512 << 20, 3);
    let flags = ["--piece-size", PIECE_FLAG];
    let mut s1 = spawn_peerd_with(t.addr, &tmp.subdir("s1"), &[&src], &flags);
    let s2 = spawn_peerd_with(t.addr, &tmp.subdir("s2"), &[&src], &flags);
    wait_catalog(t.addr, "big.bin", 2, 2, SEED_TIMEOUT);
    let leecher = spawn_peerd(t.addr, &tmp.subdir("l"), &[]);
    let out = tmp.subdir("out");

    let mut c = ControlConn::open(&leecher.control, get_line("big.bin", &out).as_bytes());
    let mut at_kill: Option<Progress> = None;
    let mut after_kill = 0;
    let reply = follow(&mut c, Instant::now() + GET_TIMEOUT, |p| {
        if at_kill.is_some() {
            after_kill += 1;
        } else if p.have * 20 >= p.pieces {
            s1.kill();
            at_kill = Some(p.clone());
        }
    });
    let f = done_file(reply);
    let at_kill = at_kill.expect("no progress event with 5% verified before the end");
    assert!(
        at_kill.have < at_kill.pieces,
        "the download was complete when the seeder was killed: {at_kill:?}"
    );
    eprintln!(
        "seeder killed at {}/{} pieces; {after_kill} progress events after",
        at_kill.have, at_kill.pieces
    );
    assert_same_file(&src, &out.join("big.bin"));
    let by = credits(&f);
    assert!(by.get(&s1.listen).is_some_and(|&b| b > 0), "{by:?}");
    assert!(by.get(&s2.listen).is_some_and(|&b| b > 0), "{by:?}");
}

// ---------------------------------------------------- 4. a lying peer

/// A fake peer that claims the whole file and serves corrupted blocks.
struct Liar {
    addr: SocketAddr,
    /// Connections accepted.
    accepted: Arc<AtomicUsize>,
    /// Connections the other side closed.
    closed: Arc<AtomicUsize>,
    /// Block bytes sent.
    served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Liar {
    fn start(info: Arc<Info>, data: Arc<Vec<u8>>) -> Liar {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let liar = Liar {
            addr: listener.local_addr().unwrap(),
            accepted: Arc::default(),
            closed: Arc::default(),
            served: Arc::default(),
            stop: Arc::default(),
            thread: None,
        };
        let (accepted, closed, served, stop) = (
            liar.accepted.clone(),
            liar.closed.clone(),
            liar.served.clone(),
            liar.stop.clone(),
        );
        let thread = thread::spawn(move || {
            let mut sessions = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        let (info, data) = (info.clone(), data.clone());
                        let (closed, served, stop) = (closed.clone(), served.clone(), stop.clone());
                        sessions.push(thread::spawn(move || {
                            lie(s, &info, &data, &served, &stop);
                            closed.fetch_add(1, Ordering::SeqCst);
                        }));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("liar accept: {e}"),
                }
            }
            for s in sessions {
                let _ = s.join();
            }
        });
        let mut liar = liar;
        liar.thread = Some(thread);
        liar
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One session of the liar: handshake (Fast bit set), have-all, unchoke,
/// then every request answered with the right block, bytes flipped.
/// Returns when the other side closes (or on `stop`).
fn lie(mut s: TcpStream, info: &Info, data: &[u8], served: &AtomicU64, stop: &AtomicBool) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut buf = Vec::new();
    let mut handshaken = false;
    let mut chunk = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        let mut out = Vec::new();
        let mut used = 0;
        if !handshaken {
            match Handshake::decode(&buf) {
                Ok(None) => continue,
                Ok(Some((hs, n))) => {
                    assert_eq!(
                        hs.info_hash, info.info_hash,
                        "leecher asked for another file"
                    );
                    used = n;
                    handshaken = true;
                    Handshake::new(info.info_hash, peer_id(4242)).encode(&mut out);
                    Message::HaveAll.encode(&mut out);
                    Message::Unchoke.encode(&mut out);
                }
                Err(e) => panic!("the leecher sent a bad handshake: {e}"),
            }
        }
        loop {
            match Message::decode(&buf[used..]) {
                Ok(None) => break,
                Ok(Some((msg, n))) => {
                    if let Message::Request(b) = msg {
                        let span = info.geometry().span(b.index, b.begin, b.length);
                        let span = span.unwrap_or_else(|| {
                            panic!("the leecher asked for {b:?}, outside every piece")
                        });
                        let lie: Vec<u8> = data[span.start as usize..span.end as usize]
                            .iter()
                            .map(|x| x ^ 0x5a)
                            .collect();
                        Message::Piece {
                            index: b.index,
                            begin: b.begin,
                            block: &lie,
                        }
                        .encode(&mut out);
                        served.fetch_add(u64::from(b.length), Ordering::SeqCst);
                    }
                    used += n;
                }
                Err(e) => panic!("the leecher sent a bad message: {e}"),
            }
        }
        buf.drain(..used);
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

#[test]
fn lying_peer_is_banned_and_an_honest_one_finishes() {
    let t = tracker(&[]);
    let tmp = TempDir::new("liar");
    let data = Arc::new(random_bytes(8 << 20, 4));
    let info = Arc::new(info_for("liar.bin", &data, PIECE));
    let liar = Liar::start(info.clone(), data.clone());
    // The liar tells the tracker it seeds the file; the session must stay
    // open for the entry to live.
    let mut liar_session = Client::connect(t.addr);
    liar_session.hello(peer_id(4242), liar.addr.port());
    liar_session.announce(&info, Pieces::All);

    let leecher = spawn_peerd(t.addr, &tmp.subdir("l"), &[]);
    let get = sta_in_background(&leecher.control, &["get", "liar.bin"]);
    wait_for(
        "the liar to serve 2 pieces and be dropped",
        GET_TIMEOUT,
        || {
            (liar.served.load(Ordering::SeqCst) >= 2 * u64::from(PIECE)
                && liar.closed.load(Ordering::SeqCst) >= 1)
                .then_some(())
        },
    );
    let banned = format!("dropping {}, which sent corrupt data", liar.addr);
    wait_for("the ban in the leecher's log", READ_TIMEOUT, || {
        leecher.log().contains(&banned).then_some(())
    });
    let accepted = liar.accepted.load(Ordering::SeqCst);
    assert_eq!(accepted, 1, "the liar was dialed again before its ban");
    let f = leecher.file("liar.bin").unwrap();
    assert_eq!(f.have, 0, "a corrupt piece was accepted: {f:?}");

    let src = tmp.subdir("src").join("liar.bin");
    std::fs::write(&src, &*data).unwrap();
    let honest = spawn_peerd_with(
        t.addr,
        &tmp.subdir("s"),
        &[&src],
        &["--piece-size", PIECE_FLAG],
    );
    assert_eq!(
        honest.wait_seeding("liar.bin", SEED_TIMEOUT).info_hash,
        info.info_hash
    );

    let got = get.join().unwrap().ok();
    assert!(got.stdout.contains("liar.bin"), "{got:?}");
    assert_eq!(std::fs::read(leecher.dir.join("liar.bin")).unwrap(), *data);
    assert_eq!(
        liar.accepted.load(Ordering::SeqCst),
        accepted,
        "the leecher dialed the liar again after banning it"
    );
    let by = credits(&leecher.file("liar.bin").unwrap());
    assert_eq!(by.get(&honest.listen), Some(&(data.len() as u64)), "{by:?}");
    // from_peers counts verified bytes (spec/control.md): none from the liar.
    assert_eq!(by.get(&liar.addr).copied().unwrap_or(0), 0, "{by:?}");
}

// ------------------------------------------- 5. the leecher is killed

#[test]
fn killed_leecher_resumes_after_restart() {
    let t = tracker(&[]);
    let tmp = TempDir::in_shm("resume");
    let src = tmp.subdir("src").join("resume.bin");
    let length = 384u64 << 20;
    write_random_file(&src, length, 5);
    let _seeder = spawn_peerd_with(
        t.addr,
        &tmp.subdir("s"),
        &[&src],
        &["--piece-size", PIECE_FLAG],
    );
    wait_catalog(t.addr, "resume.bin", 1, 1, SEED_TIMEOUT);
    let dir = tmp.subdir("l");
    let mut first = spawn_peerd(t.addr, &dir, &[]);
    let mut c = ControlConn::open(&first.control, b"get resume.bin\n");
    let deadline = Instant::now() + GET_TIMEOUT;
    let at_kill = loop {
        assert!(Instant::now() < deadline, "no 10% progress in time");
        match c.next_reply() {
            Some(Reply::Progress(p)) if p.have * 10 >= p.pieces => {
                first.kill();
                break p;
            }
            Some(Reply::Progress(_)) => {}
            other => panic!("the download ended before the kill: {other:?}"),
        }
    };
    assert!(
        at_kill.have < at_kill.pieces,
        "complete before the kill: {at_kill:?}"
    );
    assert!(
        !dir.join("resume.bin").exists(),
        "the file was published before the kill"
    );
    assert!(dir.join("resume.bin.part").exists());
    assert!(dir.join("resume.bin.part.info").exists());
    drop(c);

    // Same --dir: the download resumes by itself.
    let second = spawn_peerd(t.addr, &dir, &[]);
    let line = wait_for("the resume check in the log", SEED_TIMEOUT, || {
        let log = second.log();
        let line = log
            .lines()
            .find(|l| l.contains("pieces already verified on disk"))?;
        Some(line.to_owned())
    });
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "of").expect(&line);
    let verified: u32 = words[at - 1].parse().expect(&line);
    let pieces: u32 = words[at + 1].parse().expect(&line);
    assert_eq!(pieces, at_kill.pieces, "{line}");
    assert!(verified > 0, "nothing kept from the first run: {line}");
    assert!(verified < pieces, "{line}");

    let got = second.sta(&["get", "resume.bin"]).ok();
    assert_eq!(got.stdout.trim(), dir.join("resume.bin").to_str().unwrap());
    assert_same_file(&src, &dir.join("resume.bin"));
    let f = second.file("resume.bin").unwrap();
    assert_eq!(f.state, FileState::Seeding);
    let missing = u64::from(pieces - verified) * u64::from(PIECE);
    assert!(
        f.downloaded < length && f.downloaded <= missing,
        "the second run downloaded {} bytes; {verified} of {pieces} pieces were on disk",
        f.downloaded
    );
    eprintln!(
        "killed at {}/{pieces}, {verified} verified on restart, {} bytes fetched after",
        at_kill.have, f.downloaded
    );
}

// -------------------------------------------------- 6. a flash crowd

#[test]
fn eight_leechers_at_once() {
    let t = tracker(&[]);
    let tmp = TempDir::in_shm("crowd");
    let src = tmp.subdir("src").join("crowd.bin");
    write_random_file(&src, 64 << 20, 6);
    let seeder = spawn_peerd_with(
        t.addr,
        &tmp.subdir("s"),
        &[&src],
        &["--piece-size", PIECE_FLAG, "--upload-slots", "2"],
    );
    wait_catalog(t.addr, "crowd.bin", 1, 1, SEED_TIMEOUT);
    let leechers: Vec<Peerd> = (0..8)
        .map(|i| spawn_peerd(t.addr, &tmp.subdir(&format!("l{i}")), &[]))
        .collect();
    let gets: Vec<JoinHandle<StaRun>> = leechers
        .iter()
        .map(|l| sta_in_background(&l.control, &["get", "crowd.bin"]))
        .collect();
    for (l, g) in leechers.iter().zip(gets) {
        let run = g.join().unwrap();
        assert_eq!(run.code, Some(0), "leecher {}: {run:?}", l.listen);
        assert_same_file(&src, &l.dir.join("crowd.bin"));
    }
    let addrs: Vec<SocketAddr> = leechers.iter().map(|l| l.listen).collect();
    let mut from_leechers = 0;
    for l in &leechers {
        let by = credits(&l.file("crowd.bin").unwrap());
        eprintln!("{}: {by:?}", l.listen);
        from_leechers += by.keys().filter(|a| addrs.contains(a)).count();
    }
    assert!(
        from_leechers > 0,
        "no leecher credits another leecher's listen address"
    );
    drop(seeder);
}

// ------------------------------------------------------ 7. errors

#[test]
fn errors_reported_by_sta() {
    let t = tracker(&[]);
    let tmp = TempDir::new("errors");
    let src = tmp.subdir("src").join("real.bin");
    let data = random_bytes(1 << 20, 7);
    std::fs::write(&src, &data).unwrap();
    let seeder = spawn_peerd(t.addr, &tmp.subdir("s"), &[&src]);
    // Two different files named dup.bin, shared from two directories.
    let (da, db) = (tmp.subdir("a"), tmp.subdir("b"));
    std::fs::write(da.join("dup.bin"), random_bytes(100_000, 8)).unwrap();
    std::fs::write(db.join("dup.bin"), random_bytes(100_000, 9)).unwrap();
    let a = spawn_peerd(t.addr, &tmp.subdir("pa"), &[&da.join("dup.bin")]);
    let b = spawn_peerd(t.addr, &tmp.subdir("pb"), &[&db.join("dup.bin")]);
    let ha = to_hex(&a.wait_seeding("dup.bin", SEED_TIMEOUT).info_hash);
    let hb = to_hex(&b.wait_seeding("dup.bin", SEED_TIMEOUT).info_hash);
    assert_ne!(ha, hb);
    seeder.wait_seeding("real.bin", SEED_TIMEOUT);
    wait_catalog(t.addr, "real.bin", 1, 1, SEED_TIMEOUT);
    let mut q = Client::connect(t.addr);
    q.hello(peer_id(7), 1);
    wait_for("both dup.bin in the catalog", SEED_TIMEOUT, || {
        (q.list(0, 10, "dup.bin").total == 2).then_some(())
    });
    let leecher = spawn_peerd(t.addr, &tmp.subdir("l"), &[]);

    // Unknown file.
    let run = leecher.sta(&["get", "nosuch.bin"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("sta list"), "{run:?}");

    // Ambiguous name: both info hashes in the message.
    let run = leecher.sta(&["get", "dup.bin"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains(&ha) && run.stderr.contains(&hb),
        "{run:?}"
    );
    // ... and either one by its info hash works.
    leecher.sta(&["get", &ha]).ok();
    assert_eq!(
        std::fs::read(leecher.dir.join("dup.bin")).unwrap(),
        std::fs::read(da.join("dup.bin")).unwrap()
    );

    // Names no file can have: refused with a message naming them (the
    // control character aside, see `sta_prints_no_control_characters`).
    for name in ["../x", "x/y", "..", "a\u{1}b"] {
        let run = leecher.sta(&["get", name]);
        assert!(matches!(run.code, Some(1 | 2)), "get {name:?}: {run:?}");
        assert!(run.stdout.is_empty(), "get {name:?}: {run:?}");
        let shown = name.replace('\u{1}', "");
        let said = run.stderr.replace(['\u{1}', '?'], "");
        assert!(said.contains(&shown), "get {name:?}: {run:?}");
    }
    // Sharing a file whose name has a control character: bad_name.
    let bad = tmp.subdir("bad").join("bad\u{1}name.bin");
    std::fs::write(&bad, b"some bytes").unwrap();
    let run = leecher.sta(&[bad.as_os_str()]);
    assert_eq!(run.code, Some(2), "share without the command word: usage");
    let run = leecher.sta(&[std::ffi::OsStr::new("share"), bad.as_os_str()]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let line = format!(
        "share {}\n",
        percent_encode(bad.to_str().unwrap().as_bytes())
    );
    let e = expect_error(leecher.request(&line).1);
    assert_eq!(e.code, code::BAD_NAME, "{e:?}");

    // Destination exists: a different file at DIR/NAME stays as it is.
    let other = random_bytes(1 << 20, 10);
    std::fs::write(leecher.dir.join("real.bin"), &other).unwrap();
    let run = leecher.sta(&["get", "real.bin"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("exists"), "{run:?}");
    assert_eq!(std::fs::read(leecher.dir.join("real.bin")).unwrap(), other);
    assert!(!leecher.dir.join("real.bin.part").exists());
    // Elsewhere, the same file downloads fine.
    let out = tmp.subdir("out");
    leecher
        .sta(&["get", "real.bin", "--out", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(out.join("real.bin")).unwrap(), data);

    // Tracker down: nobody listens at its address.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let lonely = spawn_peerd_unready(dead, &tmp.subdir("lonely"), &[], &[]);
    let run = lonely.sta(&["get", "x"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("tracker"), "{run:?}");
    let run = lonely.sta(&["list"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("tracker"), "{run:?}");
    lonely.sta(&["status"]).ok();

    // No daemon at all.
    let empty = tmp.subdir("nobody");
    let run = run_sta(
        &[
            std::ffi::OsStr::new("--dir"),
            empty.as_os_str(),
            std::ffi::OsStr::new("status"),
        ],
        STA_TIMEOUT,
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("start it with"), "{run:?}");
}

/// spec/control.md, "The `sta` client": names from the daemon are printed
/// with control characters replaced by `?`, so a file name cannot drive
/// the user's terminal. Error messages quote names too.
/// Hashing reads a shared file through its memory map; a file cut short
/// meanwhile (by another program) fails the share with a message, where an
/// unguarded read of the lost pages would kill the daemon with SIGBUS.
#[test]
fn file_truncated_while_hashing_fails_the_share_not_the_daemon() {
    let t = tracker(&[]);
    let tmp = TempDir::new("shrink");
    let mut peer = spawn_peerd(t.addr, &tmp.subdir("p"), &[]);
    let mut caught = 0;
    for attempt in 0..5 {
        let path = tmp.subdir("src").join(format!("shrinking{attempt}.bin"));
        let file = std::fs::File::create(&path).unwrap();
        // Sparse: quick to make, as slow to hash as written bytes.
        file.set_len(768 << 20).unwrap();
        let share = sta_in_background(&peer.control, &["share", path.to_str().unwrap()]);
        wait_for("hashing to start", SEED_TIMEOUT, || {
            peer.daemon
                .log()
                .contains(&format!("hashing {}", path.display()))
                .then_some(())
        });
        file.set_len(4096).unwrap();
        let run = share.join().unwrap();
        peer.daemon.assert_running();
        if run.code == Some(0) {
            continue; // hashing won the race: nothing to check this time
        }
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains("shrank"), "{run:?}");
        caught += 1;
    }
    assert!(
        caught > 0,
        "hashing always finished before the file was cut"
    );
    peer.sta(&["status"]).ok();
}

#[test]
fn sta_prints_no_control_characters() {
    let t = tracker(&[]);
    let tmp = TempDir::new("clean-output");
    let p = spawn_peerd(t.addr, &tmp.subdir("p"), &[]);
    let run = p.sta(&["get", "evil\u{1b}[2J\u{1b}]0;pwned\u{7}.bin"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        !run.stderr.trim_end().chars().any(char::is_control),
        "raw control characters reach the terminal: {:?}",
        run.stderr
    );
}

// ------------------------------------------------------ 8. garbage

/// Reads until EOF or a reset; panics if nothing happens within the read
/// timeout. Returns what arrived.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the daemon kept a garbage connection open; got {got:?}")
            }
            Err(_) => return got,
        }
    }
}

#[test]
fn garbage_does_not_stop_the_daemon() {
    let t = tracker(&[]);
    let tmp = TempDir::new("garbage");
    let src = tmp.subdir("src").join("clean.bin");
    let data = random_bytes(4 << 20, 11);
    std::fs::write(&src, &data).unwrap();
    let mut seeder = spawn_peerd(t.addr, &tmp.subdir("s"), &[&src]);
    let info = seeder.wait_seeding("clean.bin", SEED_TIMEOUT);
    let mut leecher = spawn_peerd(t.addr, &tmp.subdir("l"), &[]);

    for p in [&seeder, &leecher] {
        // Random bytes on the control socket: an error reply to the first
        // line, then the daemon hangs up (maybe before all was written).
        let mut c = ControlConn::open_flood(&p.control, &random_bytes(64 * 1024, 12));
        while let Some(line) = c.next_line() {
            let e = expect_error(Reply::parse(&line).expect("a JSON reply"));
            assert_eq!(e.code, code::BAD_REQUEST, "{e:?}");
        }
        // An over-long line: bad_request, and the daemon hangs up.
        let mut c = ControlConn::open_flood(&p.control, &[b'a'; 5000]);
        let e = expect_error(c.next_reply().expect("a reply to an over-long line"));
        assert_eq!(e.code, code::BAD_REQUEST);
        assert!(e.message.contains("4096"), "{e:?}");
        assert!(
            c.next_line().is_none(),
            "still open after an over-long line"
        );
    }

    // The peer port: garbage, a handshake for a file nobody has, a good
    // handshake followed by a frame too large, and half a handshake left
    // hanging through the download below.
    let mut s = TcpStream::connect(seeder.listen).unwrap();
    s.write_all(&random_bytes(1000, 13)).unwrap();
    read_to_close(&mut s);
    let mut s = TcpStream::connect(seeder.listen).unwrap();
    let mut hs = Vec::new();
    Handshake::new([0x42; 20], peer_id(8)).encode(&mut hs);
    s.write_all(&hs).unwrap();
    assert!(
        read_to_close(&mut s).is_empty(),
        "answered a handshake for an unknown file"
    );
    let mut s = TcpStream::connect(seeder.listen).unwrap();
    let mut hs = Vec::new();
    Handshake::new(info.info_hash, peer_id(9)).encode(&mut hs);
    hs.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 7]);
    s.write_all(&hs).unwrap();
    read_to_close(&mut s);
    let mut half = TcpStream::connect(seeder.listen).unwrap();
    half.write_all(&hs[..30]).unwrap();
    let mut half_leecher = TcpStream::connect(leecher.listen).unwrap();
    half_leecher.write_all(&hs[..30]).unwrap();

    // Both still serve.
    seeder.daemon.assert_running();
    leecher.daemon.assert_running();
    seeder.sta(&["status"]).ok();
    leecher.sta(&["status"]).ok();
    leecher.sta(&["get", "clean.bin"]).ok();
    assert_eq!(std::fs::read(leecher.dir.join("clean.bin")).unwrap(), data);
    seeder.daemon.assert_running();
    leecher.daemon.assert_running();
    drop((half, half_leecher));
}

/// spec/control.md: one request per connection; the daemon closes the
/// connection after the final reply and ignores bytes after the first line.
#[test]
fn control_socket_one_request_per_connection() {
    let t = tracker(&[]);
    let tmp = TempDir::new("one-request");
    let p = spawn_peerd(t.addr, &tmp.subdir("p"), &[]);
    let mut c = ControlConn::open(&p.control, b"status\nstatus\nfrobnicate\n");
    assert!(matches!(c.next_reply(), Some(Reply::Ok(_))));
    let rest = c.next_line();
    assert!(
        rest.is_none(),
        "after the final reply the daemon must close; it sent {rest:?}"
    );
}

// ------------------------------------------ tracker restart, no peers

/// A tracker that restarts knows nothing; every daemon reconnects and
/// re-announces what it holds, so a new leecher still finds the seeder.
#[test]
fn tracker_restart_makes_peers_reannounce() {
    let mut t1 = tracker(&[]);
    let addr = t1.addr;
    let tmp = TempDir::new("restart");
    let src = tmp.subdir("src").join("restart.bin");
    write_random_file(&src, 4 << 20, 11);
    let seeder = spawn_peerd_with(
        t1.addr,
        &tmp.subdir("s"),
        &[&src],
        &["--piece-size", PIECE_FLAG],
    );
    wait_catalog(addr, "restart.bin", 1, 1, SEED_TIMEOUT);
    assert!(t1.terminate().success());
    wait_for(
        "the seeder to notice the tracker is gone",
        SEED_TIMEOUT,
        || (!seeder.status().tracker_connected).then_some(()),
    );
    // The same address: the daemons only know that one.
    let listen = addr.to_string();
    let t2 = Daemon::spawn(env!("CARGO_BIN_EXE_sta-trackerd"), &["--listen", &listen]);
    assert_eq!(t2.addr, addr);
    wait_catalog(addr, "restart.bin", 1, 1, SEED_TIMEOUT);
    let leecher = spawn_peerd(addr, &tmp.subdir("l"), &[]);
    leecher.sta(&["get", "restart.bin"]).ok();
    assert_same_file(&src, &leecher.dir.join("restart.bin"));
}

/// When no connected peer has the missing pieces, progress says so
/// (`waiting`), and the download completes once a holder appears.
#[test]
fn waiting_for_missing_pieces_is_reported() {
    let t = tracker(&[]);
    let tmp = TempDir::new("waiting");
    let data = random_bytes(8 << 20, 12);
    let info = info_for("waiting.bin", &data, PIECE);
    let n = info.num_pieces();
    let d1 = tmp.subdir("p1");
    write_partial(&d1, &info, &data, 0..n / 2);
    let _half = spawn_peerd_with(t.addr, &d1, &[], &["--max-peers", "0"]);
    wait_catalog(t.addr, "waiting.bin", 1, 0, SEED_TIMEOUT);

    let leecher = spawn_peerd(t.addr, &tmp.subdir("l"), &[]);
    let mut c = ControlConn::open(
        &leecher.control,
        get_line("waiting.bin", &leecher.dir).as_bytes(),
    );
    let deadline = Instant::now() + GET_TIMEOUT;
    let waiting = loop {
        assert!(Instant::now() < deadline, "no `waiting` progress event");
        match c.next_reply() {
            Some(Reply::Progress(p)) if p.waiting && p.have == n / 2 => break p,
            Some(Reply::Progress(_)) => {}
            other => panic!("download ended while half the pieces have no holder: {other:?}"),
        }
    };
    assert_eq!(waiting.pieces, n);

    let src = tmp.subdir("src").join("waiting.bin");
    std::fs::write(&src, &data).unwrap();
    let _seeder = spawn_peerd_with(
        t.addr,
        &tmp.subdir("s"),
        &[&src],
        &["--piece-size", PIECE_FLAG],
    );
    let file = done_file(follow(&mut c, deadline, |_| {}));
    assert_eq!(file.have, n);
    assert_eq!(
        std::fs::read(leecher.dir.join("waiting.bin")).unwrap(),
        data
    );
}

/// Waits until the catalog lists `name` with exactly `peers` peers
/// (0: not listed at all).
fn wait_listed_by(tracker: SocketAddr, name: &str, peers: u32) {
    let mut c = Client::connect(tracker);
    c.hello(peer_id(800_001 + u64::from(peers)), 1);
    wait_for(
        &format!("the catalog to list {name} with exactly {peers} peers"),
        Duration::from_secs(10),
        || {
            let page = c.list(0, 100, name);
            let now = page
                .entries
                .iter()
                .find(|e| e.name == name)
                .map_or(0, |e| e.peers);
            (now == peers).then_some(())
        },
    );
}

#[test]
fn get_out_creates_the_directory_and_remove_stops_sharing_at_once() {
    let t = tracker(&[]);
    let tmp = TempDir::in_shm("remove");
    let src = tmp.subdir("src").join("gone.bin");
    write_random_file(&src, 3 << 20, 5);
    let seeder = spawn_peerd_with(
        t.addr,
        &tmp.subdir("s"),
        &[&src],
        &["--piece-size", PIECE_FLAG],
    );
    wait_catalog(t.addr, "gone.bin", 1, 1, SEED_TIMEOUT);
    let leecher = spawn_peerd(t.addr, &tmp.subdir("l"), &[]);

    let out = tmp.path().join("not/yet/there");
    let got = leecher
        .sta(&["get", "gone.bin", "--out", out.to_str().unwrap()])
        .ok();
    assert_eq!(got.stdout.trim(), out.join("gone.bin").to_str().unwrap());
    assert_same_file(&src, &out.join("gone.bin"));
    wait_listed_by(t.addr, "gone.bin", 2);

    let removed = seeder.sta(&["remove", "gone.bin"]).ok();
    assert!(
        removed.stdout.starts_with("removed gone.bin"),
        "{removed:?}"
    );
    wait_listed_by(t.addr, "gone.bin", 1);
    assert!(src.exists(), "without --delete the file stays");
    let again = seeder.sta(&["remove", "gone.bin"]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains("sta status"), "{again:?}");

    leecher.sta(&["remove", "gone.bin", "--delete"]).ok();
    wait_listed_by(t.addr, "gone.bin", 0);
    assert!(!out.join("gone.bin").exists(), "--delete deletes the bytes");
}
