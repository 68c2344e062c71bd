//! The `sta` binary against a fake `sta-peerd`: a Unix socket in a temp
//! directory that records the request line and answers canned JSON lines.

use serde_json::Value;
use sta::control::{
    self, CatalogEntry, ControlError, FileReport, FileState, PeerBytes, Progress, StatusReport,
};
use sta::json;
use sta::meta::Info;
use sta::meta::info::to_hex;
use sta_kit::files::TempDir;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh directory, removed on drop.
fn temp_dir() -> TempDir {
    TempDir::create(&std::env::temp_dir(), "sta-cli").expect("create temp dir")
}

/// A fake daemon serving one connection at `dir/sta-peerd.sock`.
struct Fake {
    dir: TempDir,
    socket: PathBuf,
    thread: JoinHandle<String>,
}

impl Fake {
    /// Answers the first connection with `replies`, each sent after its
    /// delay, then closes it.
    fn start(replies: Vec<(Duration, String)>) -> Fake {
        let dir = temp_dir();
        let socket = dir.path().join("sta-peerd.sock");
        let listener = UnixListener::bind(&socket).expect("bind fake control socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + TIMEOUT;
            let stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        assert!(Instant::now() < deadline, "sta never connected");
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            };
            stream.set_nonblocking(false).expect("blocking");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            reader.read_line(&mut request).expect("read request");
            let mut stream = stream;
            for (delay, line) in replies {
                thread::sleep(delay);
                if stream.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
            request
        });
        Fake {
            dir,
            socket,
            thread,
        }
    }

    fn now(replies: &[String]) -> Fake {
        Fake::start(
            replies
                .iter()
                .map(|r| (Duration::ZERO, r.clone()))
                .collect(),
        )
    }

    /// The request line the fake received.
    fn request(self) -> String {
        let request = self.thread.join().expect("fake daemon thread");
        drop(self.dir);
        request
    }
}

/// Runs `sta` with `args`, no STA_* environment, in `cwd`.
fn sta_in(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sta"));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("STA_CONTROL")
        .env_remove("STA_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(cmd.output());
    });
    rx.recv_timeout(TIMEOUT)
        .expect("sta did not finish in time")
        .expect("run sta")
}

fn sta(fake: &Fake, args: &[&str]) -> Output {
    let socket = fake.socket.to_str().expect("UTF-8 temp path");
    let mut all = vec!["--control", socket];
    all.extend_from_slice(args);
    sta_in(fake.dir.path(), &all, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn hash(b: u8) -> [u8; 20] {
    [b; 20]
}

fn sample_file(path: &str) -> FileReport {
    FileReport {
        name: "disk.img".into(),
        info_hash: hash(0xab),
        path: path.into(),
        length: 10_000_000,
        piece_length: 524_288,
        pieces: 20,
        have: 20,
        state: FileState::Seeding,
        uploaded: 0,
        downloaded: 10_000_000,
        peers: 2,
        from_peers: vec![
            PeerBytes {
                addr: "10.0.0.2:6881".parse().unwrap(),
                bytes: 6_000_000,
            },
            PeerBytes {
                addr: "10.0.0.3:6881".parse().unwrap(),
                bytes: 4_000_000,
            },
        ],
    }
}

fn progress(bytes: u64, waiting: bool) -> String {
    control::progress_line(&Progress {
        info_hash: hash(0xab),
        name: "disk.img".into(),
        have: (bytes / 524_288) as u32,
        pieces: 20,
        bytes,
        length: 10_000_000,
        rate: if waiting { 0 } else { 123_400_000 },
        peers: 3,
        waiting,
        files: 1,
        files_done: 0,
    })
}

const LIST_REPLY: &str = concat!(
    r#"{"ok":true,"files":["#,
    r#"{"name":"ubuntu-24.04.iso","info_hash":"0123456789abcdef0123456789abcdef01234567","length":6114656256,"piece_length":524288,"peers":12,"seeders":4,"local":true},"#,
    r#"{"name":"a\u001b[31m.bin","info_hash":"ffffffffffffffffffffffffffffffffffffffff","length":1000,"piece_length":16384,"peers":1,"seeders":1,"file_count":1,"local":false},"#,
    r#"{"name":"photos","info_hash":"078989fc626fc79a112f6cd82f611dfcbf7f954d","length":6000,"piece_length":16384,"peers":2,"seeders":1,"file_count":3,"local":false}"#,
    "]}\n"
);

#[test]
fn list_prints_a_table() {
    let fake = Fake::now(&[LIST_REPLY.to_owned()]);
    let o = sta(&fake, &["list"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("NAME"), "{out}");
    for col in [
        "SIZE",
        "FILES",
        "PIECES",
        "PEERS",
        "SEEDERS",
        "INFO HASH",
        "MAGNET",
    ] {
        assert!(lines[0].contains(col), "{out}");
    }
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row,
        [
            "ubuntu-24.04.iso",
            "6.1",
            "GB",
            "1",
            "11663",
            "12",
            "4",
            "0123456789abcdef0123456789abcdef01234567",
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=ubuntu-24.04.iso"
        ]
    );
    // A hostile name cannot put escape sequences on the terminal.
    assert!(lines[2].starts_with("a?[31m.bin"), "{out}");
    assert!(!out.contains('\u{1b}'));
    // A directory: its name ends with `/`, FILES is its file count; an
    // entry without file_count (an older daemon) is one file.
    let row: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(row[..6], ["photos/", "6.0", "kB", "3", "1", "2"], "{out}");
    assert_eq!(lines[1].split_whitespace().nth(3), Some("1"), "{out}");
    assert_eq!(fake.request(), "list\n");
}

#[test]
fn list_json_prints_the_array() {
    let fake = Fake::now(&[LIST_REPLY.to_owned()]);
    let o = sta(&fake, &["list", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1);
    let v = json::parse(out.trim_end()).expect("stdout is JSON");
    let files = v.as_array().expect("an array");
    assert_eq!(files.len(), 3);
    let first = CatalogEntry::from_json(&files[0]).expect("catalog entry");
    assert_eq!(first.name, "ubuntu-24.04.iso");
    assert_eq!(first.length, 6_114_656_256);
    assert_eq!(files[2].get("file_count").and_then(Value::as_u64), Some(3));
    assert_eq!(
        files[1].get("name").and_then(Value::as_str),
        Some("a\u{1b}[31m.bin")
    );
    assert_eq!(
        files[1].get("magnet").and_then(Value::as_str),
        Some("magnet:?xt=urn:btih:ffffffffffffffffffffffffffffffffffffffff&dn=a%1B%5B31m.bin")
    );
    assert_eq!(fake.request(), "list\n");
}

#[test]
fn list_of_nothing_says_so() {
    let fake = Fake::now(&["{\"ok\":true,\"files\":[]}\n".to_owned()]);
    let o = sta(&fake, &["list"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("sta share FILE"), "{}", stdout(&o));
    fake.request();
}

/// The `meta` answer for `info`, as the daemon sends it.
fn meta_reply(info: &Info) -> String {
    control::meta_line(info)
}

fn photos() -> Info {
    let files = [("a.jpg", 1000), ("b.jpg", 2000), ("sub/c.jpg", 3000)];
    Info::new_tree(
        "photos",
        &files.into_iter().collect::<sta::meta::files::Listing>(),
        16384,
        vec![0; 20],
    )
    .expect("a tree")
}

#[test]
fn ls_lists_a_directory_through_meta() {
    let info = photos();
    let fake = Fake::now(&[meta_reply(&info)]);
    let o = sta(&fake, &["ls", "photos"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let hash = to_hex(&info.info_hash);
    assert_eq!(
        stdout(&o),
        format!(
            "1.0 kB  a.jpg\n2.0 kB  b.jpg\n3.0 kB  sub/c.jpg\n6.0 kB  total: 3 files in photos/, info hash {hash}\n"
        )
    );
    assert_eq!(fake.request(), "meta photos\n");

    let fake = Fake::now(&[meta_reply(&info)]);
    let o = sta(&fake, &["ls", &hash, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v = json::parse(out.trim_end()).expect("stdout is JSON");
    assert_eq!(v.get("name").and_then(Value::as_str), Some("photos"));
    assert_eq!(v.get("info_hash").and_then(Value::as_str), Some(&*hash));
    assert_eq!(v.get("length").and_then(Value::as_u64), Some(6000));
    assert_eq!(v.get("directory").and_then(Value::as_bool), Some(true));
    let files: Vec<(String, u64)> = v
        .get("files")
        .and_then(Value::as_array)
        .expect("files")
        .iter()
        .map(|f| {
            let path = f.get("path").and_then(Value::as_str).expect("path");
            let length = f.get("length").and_then(Value::as_u64).expect("length");
            (path.to_owned(), length)
        })
        .collect();
    let want = [("a.jpg", 1000), ("b.jpg", 2000), ("sub/c.jpg", 3000)];
    assert_eq!(files, want.map(|(p, n)| (p.to_owned(), n)));
    assert_eq!(fake.request(), format!("meta {hash}\n"));
}

#[test]
fn ls_of_a_single_file_shows_its_name() {
    let info = Info::new("hello world.txt", 23, 16384, vec![0; 20]).unwrap();
    let fake = Fake::now(&[meta_reply(&info)]);
    let o = sta(&fake, &["ls", "hello world.txt"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "23 B  hello world.txt");
    assert!(
        lines[1].starts_with("23 B  total: 1 file in hello world.txt,"),
        "{out}"
    );
    assert_eq!(fake.request(), "meta hello%20world.txt\n");
}

#[test]
fn ls_errors_exit_1_with_the_message() {
    let message = "'dup.bin' names 2 files: 0101010101010101010101010101010101010101, 0202020202020202020202020202020202020202; ask by info hash";
    let fake = Fake::now(&[ControlError::new(control::code::AMBIGUOUS, message).to_line()]);
    let o = sta(&fake, &["ls", "dup.bin"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).ends_with(&format!("sta: {message}\n")),
        "{}",
        stderr(&o)
    );
    fake.request();

    // An info dict that does not match its info hash is refused.
    let mut reply = meta_reply(&photos());
    reply = reply.replace(&to_hex(&photos().info_hash), &"00".repeat(20));
    let fake = Fake::now(&[reply]);
    let o = sta(&fake, &["ls", "photos"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("info hash"), "{}", stderr(&o));
    fake.request();
}

#[test]
fn get_shows_progress_then_prints_the_path() {
    let out_dir = "/srv/out dir";
    let final_path = format!("{out_dir}/disk.img");
    let fake = Fake::start(vec![
        (Duration::ZERO, progress(0, true)),
        (Duration::from_millis(1100), progress(4_200_000, false)),
        // Within a second of the previous one: not printed off a terminal.
        (Duration::ZERO, progress(5_000_000, false)),
        (
            Duration::ZERO,
            control::done_line(&sample_file(&final_path)),
        ),
    ]);
    let o = sta(&fake, &["get", "disk.img", "--out", out_dir]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{final_path}\n"));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].contains("waiting for peers that have the missing pieces..."),
        "{err}"
    );
    assert!(lines[1].contains("42.0%"), "{err}");
    assert!(lines[1].contains("123.4 MB/s"), "{err}");
    assert!(lines[1].contains("ETA 0:01"), "{err}");
    assert!(lines[1].contains("3 peers"), "{err}");
    assert!(!err.contains("50.0%"), "{err}");
    assert!(lines[2].starts_with("got disk.img (10.0 MB)"), "{err}");
    assert!(!err.contains('\r'), "no bar off a terminal: {err:?}");
    assert_eq!(fake.request(), "get disk.img /srv/out%20dir\n");
}

#[test]
fn get_by_info_hash_without_progress() {
    let target = "abababababababababababababababababababab";
    let fake = Fake::now(&[control::done_line(&sample_file("/data/disk.img"))]);
    let o = sta(&fake, &["get", target]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "/data/disk.img\n");
    assert_eq!(fake.request(), format!("get {target}\n"));
}

#[test]
fn get_error_exits_1_with_the_message() {
    let message = "no file named 'x y' in the catalog; run `sta list` to see what is shared";
    let fake = Fake::now(&[
        progress(0, true),
        ControlError::new(control::code::NOT_FOUND, message).to_line(),
    ]);
    let o = sta(&fake, &["get", "x y"]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).ends_with(&format!("sta: {message}\n")),
        "{}",
        stderr(&o)
    );
    assert_eq!(fake.request(), "get x%20y\n");
}

#[test]
fn daemon_hanging_up_or_babbling_exits_1() {
    let fake = Fake::now(&[]);
    let o = sta(&fake, &["status"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("closed the connection"),
        "{}",
        stderr(&o)
    );
    fake.request();

    let fake = Fake::now(&["{\"ok\":true,\"files\":[".to_owned()]);
    let o = sta(&fake, &["list"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("in the middle of a reply"),
        "{}",
        stderr(&o)
    );
    fake.request();

    let fake = Fake::now(&["hello\n".to_owned()]);
    let o = sta(&fake, &["list"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("unexpected reply"), "{}", stderr(&o));
    fake.request();
}

#[test]
fn unreachable_daemon_exits_2_with_a_hint() {
    let dir = temp_dir();
    let d = dir.path().to_str().unwrap();
    let o = sta_in(dir.path(), &["--dir", d, "list"], &[]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "sta: cannot reach sta-peerd at {d}/sta-peerd.sock: "
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("start it with `sta-peerd --dir {d}`")),
        "{err}"
    );

    // The same through the environment, and with the default location.
    let o = sta_in(dir.path(), &["status"], &[("STA_DIR", dir.path())]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains(&format!("{d}/sta-peerd.sock")));
    let o = sta_in(dir.path(), &["status"], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("at ./sta-peerd.sock"), "{}", stderr(&o));
    assert!(stderr(&o).contains("`sta-peerd --dir .`"), "{}", stderr(&o));
    let odd = dir.path().join("ctl");
    let o = sta_in(dir.path(), &["stop"], &[("STA_CONTROL", &odd)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(&format!("`sta-peerd --dir {d} --control {d}/ctl`")),
        "{}",
        stderr(&o)
    );
}

fn sample_status() -> StatusReport {
    let mut downloading = sample_file("/srv/sta/big.iso.part");
    downloading.name = "big.iso".into();
    downloading.state = FileState::Downloading;
    downloading.have = 3;
    StatusReport {
        peer_id: *b"-ST0001-abcdefghijkl",
        listen: "0.0.0.0:6881".parse().unwrap(),
        tracker_addr: "tracker.lab:6969".into(),
        tracker_connected: true,
        trackers: vec![
            control::TrackerState {
                addr: "tracker.lab:6969".into(),
                connected: true,
            },
            control::TrackerState {
                addr: "tracker2.lab:6969".into(),
                connected: false,
            },
        ],
        fetching: Vec::new(),
        files: vec![sample_file("/srv/sta/disk.img"), downloading],
    }
}

#[test]
fn status_json_prints_the_object() {
    let fake = Fake::now(&[control::status_line(&sample_status())]);
    let o = sta(&fake, &["status", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json::parse(stdout(&o).trim_end()).expect("stdout is JSON");
    assert_eq!(v.get("ok"), None);
    assert_eq!(
        v.get("peer_id").and_then(Value::as_str),
        Some("2d5354303030312d6162636465666768696a6b6c")
    );
    assert_eq!(
        v.get("tracker")
            .and_then(|t| t.get("connected"))
            .and_then(Value::as_bool),
        Some(true)
    );
    let files = v.get("files").and_then(Value::as_array).unwrap();
    assert_eq!(FileReport::from_json(&files[1]).unwrap().have, 3);
    assert_eq!(fake.request(), "status\n");
}

#[test]
fn status_prints_a_summary() {
    let fake = Fake::now(&[control::status_line(&sample_status())]);
    let o = sta(&fake, &["status"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("listen    0.0.0.0:6881"), "{out}");
    assert!(
        out.contains(
            "tracker   tracker.lab:6969 (connected)\ntracker   tracker2.lab:6969 (not connected)\n"
        ),
        "{out}"
    );
    assert!(out.contains("downloading"), "{out}");
    assert!(out.contains("3/20"), "{out}");
    assert!(out.contains("/srv/sta/big.iso.part"), "{out}");
    fake.request();
}

#[test]
fn share_sends_an_absolute_path() {
    let fake = Fake::now(&[control::shared_line(&sample_file("/x/disk.img"))]);
    std::fs::write(fake.dir.path().join("disk.img"), b"data").unwrap();
    let o = sta(&fake, &["share", "disk.img"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(&"ab".repeat(20)), "{}", stdout(&o));
    let dir = std::fs::canonicalize(fake.dir.path()).unwrap();
    let want = format!("share {}/disk.img\n", dir.display());
    assert_eq!(fake.request(), want);
}

#[test]
fn stop_says_ok() {
    let fake = Fake::now(&[control::ok_line()]);
    let o = sta(&fake, &["stop"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("stopping"));
    assert_eq!(fake.request(), "stop\n");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let dir = temp_dir();
    for args in [
        &[][..],
        &["frobnicate"],
        &["list", "extra"],
        &["list", "--bogus"],
        &["get"],
        &["get", "a", "b"],
        &["ls"],
        &["ls", "a", "b"],
        &["ls", "a", "--long"],
        &["share"],
        &["torrent", "x"],
        &["torrent", "-o", "x.torrent"],
        &["torrent", "x", "-o", "x.torrent", "--piece-size", "1000"],
        &["--control", "/a", "--dir", "/b", "list"],
        &["--json"],
    ] {
        let o = sta_in(dir.path(), args, &[]);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("USAGE"), "{args:?}: {}", stderr(&o));
    }
    let o = sta_in(dir.path(), &["--help"], &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("COMMANDS"));
    let o = sta_in(dir.path(), &["get", "--help"], &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("sta get NAME|INFOHASH|FILE.torrent|MAGNET [--out DIR]"));
    let o = sta_in(dir.path(), &["ls", "--help"], &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("sta ls NAME|INFOHASH [--json]"));
    let o = sta_in(dir.path(), &["torrent", "--help"], &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("sta torrent NAME|INFOHASH|FILE -o OUT.torrent"));
    // The demo itself runs in tests/demo.rs; here only its usage.
    let o = sta_in(dir.path(), &["demo", "--size", "lots"], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("size 'lots'"), "{}", stderr(&o));
    let o = sta_in(dir.path(), &["demo", "--help"], &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("sta demo [--size SIZE]"));
}
