//! `sta`: the command-line client of a local `sta-peerd`, over its control
//! socket (protocol in `spec/control.md`).
//!
//! Exit status: 0 on success, 1 when the daemon reports an error or the
//! connection fails midway, 2 on wrong usage or when the daemon cannot be
//! reached.
//!
//! The control client, the progress bar and the formatting helpers are in
//! `sta::cli` (shared with `sta demo`, which is `sta::cli::demo`).

use serde_json::Value;
use sta::cli::client::{self, CallError, Client};
use sta::cli::format::{clean, clock, human_bytes, table};
use sta::cli::ls::{self, shown_name};
use sta::cli::progress::ProgressView;
use sta::cli::torrent::{self, WithMagnet};
use sta::control::{CatalogEntry, ControlRequest, StatusReport};
use sta::meta::info::to_hex;
use sta::meta::magnet::{Magnet, is_magnet, magnet_link};
use sta::meta::torrent::{MAX_TORRENT_FILE, Torrent};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const HELP: &str = "\
sta: share and fetch files through the local sta-peerd.

USAGE:
    sta [--control PATH | --dir DIR] COMMAND [ARGS]

COMMANDS:
    share FILE                   hash FILE and offer it to every peer
    list [--json]                the tracker's catalog of shared files
    ls NAME|INFOHASH [--json]    the files of a shared file or directory
    get NAME|INFOHASH|FILE.torrent|MAGNET [--out DIR]
                                 download a file, showing progress
    torrent NAME|INFOHASH|FILE -o OUT.torrent [--tracker-url URL]
                                 write a .torrent for BitTorrent clients
    remove NAME|INFOHASH [--delete]
                                 stop sharing or fetching a file
    status [--json]              what this sta-peerd holds and does
    stop                         stop sta-peerd
    limits [--upload RATE] [--download RATE]
                                 show or change the rate limits
    ca init DIR | ca issue --name HOST [--days N] DIR
                                 the CA of a private swarm, and host
                                 certificates (no daemon needed)
    demo [--size SIZE] [--http PORT]
                                 run a tracker and 4 peers on this machine
                                 and show a download, with --http in a
                                 browser too (see demo --help)

OPTIONS:
    --control PATH   the daemon's control socket
    --dir DIR        the daemon's directory; the socket is DIR/sta-peerd.sock
    -h, --help       print this help, or a command's help with COMMAND --help

ENVIRONMENT:
    STA_CONTROL      control socket, when neither --control nor --dir is given
    STA_DIR          daemon directory, when STA_CONTROL is not set either
                     (last resort: ./sta-peerd.sock)

Exit status: 0 done, 1 the daemon reported an error, 2 wrong usage or
sta-peerd not reachable.
";

const HELP_SHARE: &str = "\
sta share FILE

Hashes FILE (SHA1, piece by piece) and announces it to the tracker, so that
every peer can download it. FILE stays where it is; sta-peerd serves it
from there, so do not modify it while it is shared. Prints the file's
info hash once hashing is done, which may take a while for a large file.
";

const HELP_LIST: &str = "\
sta list [--json]

Lists the files and directories the tracker knows: name (a directory's
ends with /), size, number of files, number of pieces, peers holding some
of it, seeders (peers holding all of it) and info hash. `sta ls NAME`
lists a directory's files.

    --json   print the catalog as a JSON array instead of a table
";

const HELP_LS: &str = "\
sta ls NAME|INFOHASH [--json]

Lists the files of a shared file or directory, one per line: size, then
path inside the directory (a single file is its name), then a total line.
The metadata comes from sta-peerd: its own for a file it holds, else the
tracker's. Give the info hash (see `sta list`) when several share a name.

    --json   print {name, info_hash, length, directory, files: [{path, length}]}
";

const HELP_GET: &str = "\
sta get NAME|INFOHASH|FILE.torrent|MAGNET [--out DIR] [--only GLOB]...

Downloads a file, or a directory shared as one (`sta share DIR`), from
every peer that has pieces of it, verifying each piece, and prints its
path when done. Nothing appears under that path until it is complete. Give the info hash (40 hex digits,
see `sta list`) when several files share a name. Progress goes to stderr.
Interrupting `sta get` does not stop the download; see `sta status`.

An existing FILE.torrent (BitTorrent v1 or hybrid, one file or many) gives
the metadata itself; a magnet link (magnet:?xt=urn:btih:HASH...) is a
get by info hash, its x.pe peers (HOST:PORT) dialed too. Peers come from
sta-peerd's trackers, x.pe and PEX; when no tracker has the file's
metadata (or sta-peerd runs with none), the info dict is fetched from the
peers and checked against the info hash.

    --out DIR     where to put the file [default: the daemon's directory]
    --only GLOB   of a directory, fetch only the files whose path (under the
                  directory, components joined by /) matches GLOB: `*` and
                  `?` stop at /, `**` crosses it; repeatable. See `sta ls`.
";

const HELP_TORRENT: &str = "\
sta torrent NAME|INFOHASH|FILE -o OUT.torrent [--tracker-url URL] [--piece-size N]
            [--ssl-cert CA.crt]

Writes a BitTorrent v1 .torrent (of one file, or of a directory as a
multi-file torrent), for BitTorrent clients (libtorrent, Transmission,
aria2...). An existing local FILE or directory is hashed here, with pieces
of --piece-size; otherwise sta-peerd gives the info dict of the share named
NAME or INFOHASH (its own, or the tracker's).

    -o, --out OUT.torrent   where to write it
    --tracker-url URL       an announce URL; repeatable [default:
                            udp://HOST:PORT/announce for each HOST:PORT of
                            sta-peerd's trackers, whose UDP BitTorrent
                            tracker shares its port]. With several, the
                            first is `announce` and all form one tier of
                            `announce-list` (BEP 12)
    --piece-size N          piece size for FILE, bytes or with K/M [default: 512K]
    --ssl-cert CA.crt       make FILE's an SSL torrent of the swarm of this CA
                            (its first PEM certificate in the info dict's
                            `ssl-cert`): the torrent a TLS sta-peerd of that
                            swarm makes of FILE, same info hash. A share's
                            info dict is as its daemon made it (a TLS
                            daemon's shares are SSL torrents already)
";

const HELP_STATUS: &str = "\
sta status [--json]

Shows this sta-peerd: peer id, listening address, tracker connection, and
every file it seeds, downloads or checks, with transfer counters.

    --json   print the status as a JSON object
";

const HELP_REMOVE: &str = "\
sta remove NAME|INFOHASH [--delete]

Stops sharing a file, or cancels its download: its peers are dropped and
the tracker stops listing this daemon for it at once. A cancelled
download does not come back when sta-peerd restarts. With --delete, its
bytes are deleted too: the .part of a download, or the shared file itself.
Give the info hash (see `sta status`) when two files share a name.
";

const HELP_STOP: &str = "\
sta stop

Asks sta-peerd to exit. Its shared files stop being served.
";

const HELP_LIMITS: &str = "\
sta limits [--upload RATE] [--download RATE] [--json]

Shows sta-peerd's rate limits, after changing those given: the bytes per
second (bytes, not bits) it sends to and receives from all peers together.
They start as its --max-upload-rate and --max-download-rate, and a change
lasts until it stops. RATE is bytes per second, not bits: 50M, 1.5G, 800k
(k, M, G = 10^3, 10^6, 10^9), 2Mi (Ki, Mi, Gi = 2^10, 2^20, 2^30) or plain
bytes, optionally followed by B or /s; 0 means unlimited.

    --upload RATE     the new upload limit
    --download RATE   the new download limit
    --json            print {\"upload\":N,\"download\":N} in bytes per second, 0 for none
";

fn main() -> ExitCode {
    let raw: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run(raw) {
        Ok(code) => code,
        Err(Fail::Usage(message)) => {
            eprintln!("sta: {message}\n");
            eprint!("{HELP}");
            ExitCode::from(2)
        }
        Err(Fail::Unreachable(message)) => {
            eprintln!("sta: {message}");
            ExitCode::from(2)
        }
        Err(Fail::Failed(message)) => {
            eprintln!("sta: {message}");
            ExitCode::from(1)
        }
    }
}

/// Why `sta` stops short, and so its exit status.
enum Fail {
    /// Wrong usage: message, help, exit 2.
    Usage(String),
    /// The control socket cannot be reached: exit 2.
    Unreachable(String),
    /// The daemon said no, or the conversation broke: exit 1.
    Failed(String),
}

fn usage(message: impl Into<String>) -> Fail {
    Fail::Usage(message.into())
}

fn arg_error(e: pico_args::Error) -> Fail {
    usage(e.to_string())
}

fn run(raw: Vec<OsString>) -> Result<ExitCode, Fail> {
    let mut args = pico_args::Arguments::from_vec(raw);
    let help = args.contains(["-h", "--help"]);
    let control: Option<PathBuf> = args
        .opt_value_from_os_str("--control", to_path)
        .map_err(arg_error)?;
    let dir: Option<PathBuf> = args
        .opt_value_from_os_str("--dir", to_path)
        .map_err(arg_error)?;
    let command = args.subcommand().map_err(arg_error)?;

    let Some(command) = command else {
        if help {
            print!("{HELP}");
            return Ok(ExitCode::SUCCESS);
        }
        return Err(match args.finish().first() {
            None => usage("missing COMMAND"),
            Some(a) => usage(format!("unknown option '{}'", a.to_string_lossy())),
        });
    };
    if help {
        let text = match command.as_str() {
            "share" => HELP_SHARE,
            "list" => HELP_LIST,
            "ls" => HELP_LS,
            "get" => HELP_GET,
            "torrent" => HELP_TORRENT,
            "remove" => HELP_REMOVE,
            "status" => HELP_STATUS,
            "stop" => HELP_STOP,
            "limits" => HELP_LIMITS,
            "demo" => sta::cli::demo::HELP,
            "ca" => sta::cli::ca::HELP,
            _ => return Err(usage(format!("unknown command '{command}'"))),
        };
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    if command == "demo" {
        return Ok(sta::cli::demo::run(args.finish()));
    }
    if command == "ca" {
        return Ok(sta::cli::ca::run(args.finish()));
    }

    let daemon = locate(control, dir)?;
    match command.as_str() {
        "share" => {
            let [file] = free_args(args, "share FILE")?;
            share(&daemon, &file)
        }
        "list" => {
            let json = args.contains("--json");
            let [] = free_args(args, "list [--json]")?;
            list(&daemon, json)
        }
        "ls" => {
            let json = args.contains("--json");
            let [target] = free_args(args, "ls NAME|INFOHASH [--json]")?;
            ls(&daemon, &target, json)
        }
        "get" => {
            let out: Option<PathBuf> = args
                .opt_value_from_os_str("--out", to_path)
                .map_err(arg_error)?;
            let only: Vec<String> = args.values_from_str("--only").map_err(arg_error)?;
            let [target] = free_args(
                args,
                "get NAME|INFOHASH|FILE.torrent|MAGNET [--out DIR] [--only GLOB]...",
            )?;
            get(&daemon, &target, out, only)
        }
        "torrent" => {
            let out: Option<PathBuf> = args
                .opt_value_from_os_str(["-o", "--out"], to_path)
                .map_err(arg_error)?;
            let urls: Vec<String> = args.values_from_str("--tracker-url").map_err(arg_error)?;
            let piece: Option<String> =
                args.opt_value_from_str("--piece-size").map_err(arg_error)?;
            let ssl: Option<PathBuf> = args
                .opt_value_from_os_str("--ssl-cert", to_path)
                .map_err(arg_error)?;
            let line = "torrent NAME|INFOHASH|FILE -o OUT.torrent [--tracker-url URL]";
            let [target] = free_args(args, line)?;
            let out =
                out.ok_or_else(|| usage(format!("missing -o OUT.torrent; usage: sta {line}")))?;
            let piece = match piece {
                None => torrent::DEFAULT_PIECE_SIZE,
                Some(p) => torrent::parse_piece_size(&p).map_err(usage)?,
            };
            make_torrent(&daemon, &target, &out, urls, piece, ssl.as_deref())
        }
        "remove" => {
            let delete = args.contains("--delete");
            let [target] = free_args(args, "remove NAME|INFOHASH [--delete]")?;
            remove(&daemon, &target, delete)
        }
        "status" => {
            let json = args.contains("--json");
            let [] = free_args(args, "status [--json]")?;
            status(&daemon, json)
        }
        "stop" => {
            let [] = free_args(args, "stop")?;
            stop(&daemon)
        }
        "limits" => {
            let rate = |s: &str| sta::ratelimit::parse_rate(s);
            let upload: Option<u64> = args
                .opt_value_from_fn("--upload", rate)
                .map_err(arg_error)?;
            let download: Option<u64> = args
                .opt_value_from_fn("--download", rate)
                .map_err(arg_error)?;
            let json = args.contains("--json");
            let [] = free_args(args, "limits [--upload RATE] [--download RATE] [--json]")?;
            limits(&daemon, upload, download, json)
        }
        _ => Err(usage(format!("unknown command '{command}'"))),
    }
}

fn to_path(s: &std::ffi::OsStr) -> Result<PathBuf, &'static str> {
    if s.is_empty() {
        Err("empty path")
    } else {
        Ok(PathBuf::from(s))
    }
}

/// Exactly `N` free arguments, else a usage error. An unknown `-x` is
/// reported as an option; a single `--` before them is skipped.
fn free_args<const N: usize>(
    args: pico_args::Arguments,
    usage_line: &str,
) -> Result<[String; N], Fail> {
    let mut rest = args.finish();
    if rest.first().is_some_and(|a| a == "--") {
        rest.remove(0);
    } else if let Some(opt) = rest.iter().find(|a| {
        a.to_str()
            .is_some_and(|s| s.starts_with('-') && s.len() > 1)
    }) {
        return Err(usage(format!(
            "unknown option '{}' (usage: sta {usage_line})",
            opt.to_string_lossy()
        )));
    }
    let words: Vec<String> = rest
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| usage(format!("argument {a:?} is not valid UTF-8")))
        })
        .collect::<Result<_, _>>()?;
    let n = words.len();
    words.try_into().map_err(|_| {
        usage(format!(
            "expected {N} argument(s), got {n}; usage: sta {usage_line}"
        ))
    })
}

// ---------------------------------------------------------------- daemon

/// The message as `CallError` displays it, with the daemon's control
/// characters replaced.
impl From<CallError> for Fail {
    fn from(e: CallError) -> Fail {
        let message = e.to_string();
        match e {
            CallError::TooLong(_) => Fail::Usage(message),
            CallError::Unreachable(_) => Fail::Unreachable(message),
            CallError::Refused(_) | CallError::Broken(_) => Fail::Failed(message),
        }
    }
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The daemon to talk to: flags first (`--control`, `--dir`), then
/// `$STA_CONTROL`, `$STA_DIR`, then the current directory.
fn locate(control: Option<PathBuf>, dir: Option<PathBuf>) -> Result<Client, Fail> {
    match (control, dir) {
        (Some(_), Some(_)) => Err(usage("give --control or --dir, not both")),
        (Some(socket), None) => Ok(Client::from_socket(socket)),
        (None, Some(dir)) => Ok(Client::from_dir(dir)),
        (None, None) => Ok(
            match (non_empty_env("STA_CONTROL"), non_empty_env("STA_DIR")) {
                (Some(socket), _) => Client::from_socket(socket),
                (None, Some(dir)) => Client::from_dir(dir),
                (None, None) => Client::from_dir(PathBuf::from(".")),
            },
        ),
    }
}

// -------------------------------------------------------------- commands

fn share(daemon: &Client, file: &str) -> Result<ExitCode, Fail> {
    // The daemon may see paths this user cannot (or the reverse): when the
    // file cannot be resolved here, let the daemon say why.
    let path = std::fs::canonicalize(file)
        .or_else(|_| std::path::absolute(file))
        .map_err(|e| Fail::Failed(format!("cannot make '{file}' an absolute path: {e}")))?;
    let tty = std::io::stderr().is_terminal();
    if tty {
        eprint!("hashing {}...", path.display());
    }
    let result = daemon.call(&ControlRequest::Share(path), |_| {});
    if tty {
        eprintln!();
    }
    let v = result?;
    let f = client::file_of(&v)?;
    out(&format!(
        "shared {} ({}, {} pieces of {}), info hash {}\n",
        clean(&f.name),
        human_bytes(f.length),
        f.pieces,
        human_bytes(u64::from(f.piece_length)),
        to_hex(&f.info_hash)
    ))
}

fn remove(daemon: &Client, target: &str, delete: bool) -> Result<ExitCode, Fail> {
    let req = ControlRequest::Remove {
        target: target.to_owned(),
        delete,
    };
    let v = daemon.call(&req, |_| {})?;
    if let Some(fetch) = v.get("fetching") {
        let hash = fetch
            .get("info_hash")
            .and_then(Value::as_str)
            .unwrap_or("?");
        return out(&format!(
            "removed the download of {}, which had not got its info dict yet\n",
            clean(hash)
        ));
    }
    let f = client::file_of(&v)?;
    let what = match delete {
        true => "removed and deleted",
        false => "removed",
    };
    out(&format!(
        "{what} {} ({}), info hash {}\n",
        clean(&f.name),
        f.path.display(),
        to_hex(&f.info_hash)
    ))
}

fn list(daemon: &Client, json: bool) -> Result<ExitCode, Fail> {
    let v = daemon.call(&ControlRequest::List, |_| {})?;
    let Some(Value::Array(files)) = v.get("files") else {
        return Err(protocol_error("list reply without a \"files\" array"));
    };
    let entries: Vec<CatalogEntry> = files
        .iter()
        .map(CatalogEntry::from_json)
        .collect::<Result<_, _>>()
        .map_err(|e| protocol_error(&e))?;
    if json {
        let listed: Vec<_> = entries.iter().map(WithMagnet::entry).collect();
        return out(&(sta::json::to_string(&listed) + "\n"));
    }
    if entries.is_empty() {
        return out("the catalog is empty; share a file with `sta share FILE`\n");
    }
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                shown_name(&e.name, e.is_dir()),
                human_bytes(e.length),
                e.file_count.to_string(),
                e.pieces().to_string(),
                e.peers.to_string(),
                e.seeders.to_string(),
                to_hex(&e.info_hash),
                magnet_link(&e.info_hash, &e.name),
            ]
        })
        .collect();
    out(&table(
        &[
            "NAME",
            "SIZE",
            "FILES",
            "PIECES",
            "PEERS",
            "SEEDERS",
            "INFO HASH",
            "MAGNET",
        ],
        &[false, true, true, true, true, true, false, false],
        rows,
    ))
}

/// `sta ls`: the info dict comes from `meta`, resolved as `get` resolves
/// its target (the daemon's own file, else the tracker's GetMeta).
fn ls(daemon: &Client, target: &str, json: bool) -> Result<ExitCode, Fail> {
    let req = ControlRequest::Meta {
        target: target.to_owned(),
    };
    let v = daemon.call(&req, |_| {})?;
    let info = sta::control::info_of_meta(&v).map_err(|e| protocol_error(&e))?;
    if json {
        return out(&format!("{}\n", ls::listing_json(&info)));
    }
    out(&ls::listing(&info))
}

fn get(
    daemon: &Client,
    target: &str,
    out_dir: Option<PathBuf>,
    only: Vec<String>,
) -> Result<ExitCode, Fail> {
    let out_dir = match out_dir {
        None => None,
        Some(dir) => Some(std::path::absolute(&dir).map_err(|e| {
            Fail::Failed(format!(
                "cannot make '{}' an absolute path: {e}",
                dir.display()
            ))
        })?),
    };
    let request = if is_magnet(target) {
        let m = Magnet::parse(target)
            .map_err(|e| Fail::Failed(format!("bad magnet link: {}", clean(&e.0))))?;
        ControlRequest::Get {
            target: to_hex(&m.info_hash),
            out_dir,
            only,
            peers: magnet_peers(&m.peers)?,
        }
    } else if is_torrent_file(target) {
        let path = std::fs::canonicalize(target)
            .map_err(|e| Fail::Failed(format!("cannot read {target}: {e}")))?;
        let bytes = read_torrent(&path)?;
        Torrent::read(&bytes)
            .map_err(|e| Fail::Failed(format!("{}: {}", path.display(), clean(&e.0))))?;
        ControlRequest::GetTorrent {
            torrent: path,
            out_dir,
            only,
        }
    } else {
        ControlRequest::Get {
            target: target.to_owned(),
            out_dir,
            only,
            peers: Vec::new(),
        }
    };
    let started = Instant::now();
    let mut view = ProgressView::new(std::io::stderr().is_terminal());
    let result = daemon.call(&request, |p| view.update(p));
    view.clear();
    let v = result?;
    let f = client::file_of(&v)?;
    let secs = started.elapsed().as_secs_f64();
    let mut summary = format!("got {} ({})", clean(&f.name), human_bytes(f.length));
    if view.seen() && secs >= 0.5 {
        summary.push_str(&format!(
            " in {}, {}/s",
            clock(secs.round() as u64),
            human_bytes((f.length as f64 / secs) as u64)
        ));
    }
    if !f.from_peers.is_empty() {
        summary.push_str(&format!(" from {} peer(s)", f.from_peers.len()));
    }
    eprintln!("{summary}");
    out(&format!("{}\n", f.path.display()))
}

/// A magnet's `x.pe` peers, each `HOST:PORT` resolved once here (the
/// daemon takes addresses); the daemon keeps at most `MAX_GET_PEERS`.
fn magnet_peers(given: &[String]) -> Result<Vec<std::net::SocketAddr>, Fail> {
    use std::net::ToSocketAddrs;
    let mut out = Vec::new();
    for pe in given.iter().take(sta::control::MAX_GET_PEERS) {
        let addr = pe
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                Fail::Failed(format!(
                    "bad magnet link: x.pe={} is not HOST:PORT",
                    clean(pe)
                ))
            })?;
        out.push(addr);
    }
    Ok(out)
}

/// `sta get X.torrent`: an existing file named `*.torrent`.
fn is_torrent_file(target: &str) -> bool {
    let named = target.len() > 8
        && target
            .get(target.len() - 8..)
            .is_some_and(|s| s.eq_ignore_ascii_case(".torrent"));
    named && std::path::Path::new(target).is_file()
}

fn read_torrent(path: &std::path::Path) -> Result<Vec<u8>, Fail> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TORRENT_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| Fail::Failed(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_TORRENT_FILE {
        return Err(Fail::Failed(format!(
            "{} is larger than {MAX_TORRENT_FILE} bytes; not a single-file torrent STA can use",
            path.display()
        )));
    }
    Ok(bytes)
}

/// `info` as an SSL torrent of the CA in the PEM file `ca`.
fn with_swarm_ca(info: sta::meta::Info, ca: &std::path::Path) -> Result<sta::meta::Info, Fail> {
    use std::io::Read;
    let mut pem = Vec::new();
    // A CA file is a few KiB; more than this is no CA file.
    let cap = 64 * sta::limits::MAX_SSL_CERT as u64;
    std::fs::File::open(ca)
        .and_then(|f| f.take(cap).read_to_end(&mut pem))
        .map_err(|e| Fail::Failed(format!("cannot read {}: {e}", ca.display())))?;
    let swarm = sta::tls::torrent::SwarmCa::from_pem(&pem)
        .ok_or_else(|| Fail::Failed(format!("{}: no PEM certificate in it", ca.display())))?;
    info.with_ssl_cert(&swarm.pem)
        .map_err(|e| Fail::Failed(format!("{}: {e}", ca.display())))
}

fn make_torrent(
    daemon: &Client,
    target: &str,
    out_path: &std::path::Path,
    urls: Vec<String>,
    piece: u32,
    ssl: Option<&std::path::Path>,
) -> Result<ExitCode, Fail> {
    let local = std::path::Path::new(target);
    let info = if local.is_file() || local.is_dir() {
        let info = torrent::hash_file(local, piece).map_err(Fail::Failed)?;
        match ssl {
            Some(ca) => with_swarm_ca(info, ca)?,
            None => info,
        }
    } else if ssl.is_some() {
        return Err(usage(format!(
            "--ssl-cert is for a local FILE; no file {target:?} here, and a share's info dict is as its sta-peerd made it"
        )));
    } else {
        let v = daemon.call(
            &ControlRequest::Meta {
                target: target.to_owned(),
            },
            |_| {},
        )?;
        sta::control::info_of_meta(&v).map_err(|e| protocol_error(&e))?
    };
    let urls = match urls.is_empty() {
        false => urls,
        true => {
            let v = daemon.call(&ControlRequest::Status, |_| {}).map_err(|e| {
                let hint = "; or give the announce URL with --tracker-url";
                match Fail::from(e) {
                    Fail::Unreachable(m) => Fail::Unreachable(m + hint),
                    Fail::Failed(m) => Fail::Failed(m + hint),
                    other => other,
                }
            })?;
            let s = StatusReport::from_json(&v).map_err(|e| protocol_error(&e))?;
            s.trackers
                .iter()
                .map(|t| torrent::default_announce_url(&t.addr))
                .collect()
        }
    };
    std::fs::write(out_path, Torrent::write(&info, &urls))
        .map_err(|e| Fail::Failed(format!("cannot write {}: {e}", out_path.display())))?;
    out(&format!(
        "wrote {} ({}, {}, {} pieces of {}), info hash {}, announce {}\n{}\n",
        out_path.display(),
        clean(&info.name),
        human_bytes(info.length),
        info.num_pieces(),
        human_bytes(u64::from(info.piece_length)),
        to_hex(&info.info_hash),
        clean(&urls.join(" ")),
        magnet_link(&info.info_hash, &info.name)
    ))
}

fn status(daemon: &Client, json: bool) -> Result<ExitCode, Fail> {
    let v = daemon.call(&ControlRequest::Status, |_| {})?;
    let s = StatusReport::from_json(&v).map_err(|e| protocol_error(&e))?;
    if json {
        let files: Vec<_> = s.files.iter().map(WithMagnet::file).collect();
        return out(&(sta::json::to_string(&s.object_with(files)) + "\n"));
    }
    let mut text = format!("peer id   {}\nlisten    {}\n", to_hex(&s.peer_id), s.listen);
    if s.trackers
        .iter()
        .all(|t| t.addr == sta::control::NO_TRACKER)
    {
        text.push_str(
            "tracker   none: files are found through peers only (get by info hash or magnet with x.pe, \
             metadata from peers, PEX); `sta list` and `sta get NAME` need a tracker\n",
        );
    }
    for t in s
        .trackers
        .iter()
        .filter(|t| t.addr != sta::control::NO_TRACKER)
    {
        let state = match t.connected {
            true => "connected",
            false => "not connected",
        };
        text.push_str(&format!("tracker   {} ({state})\n", clean(&t.addr)));
    }
    text.push_str(&format!("files     {}\n", s.files.len()));
    for f in &s.fetching {
        text.push_str(&format!(
            "fetching  the info dict of {} from peers ({} connected, {} known)\n",
            to_hex(&f.info_hash),
            f.peers,
            f.known
        ));
    }
    if !s.files.is_empty() {
        let rows = s
            .files
            .iter()
            .map(|f| {
                vec![
                    clean(&f.name),
                    f.state.as_str().to_owned(),
                    format!("{}/{}", f.have, f.pieces),
                    human_bytes(f.length),
                    human_bytes(f.uploaded),
                    human_bytes(f.downloaded),
                    f.peers.to_string(),
                    clean(&f.path.to_string_lossy()),
                    magnet_link(&f.info_hash, &f.name),
                ]
            })
            .collect();
        text.push('\n');
        text.push_str(&table(
            &[
                "NAME", "STATE", "PIECES", "SIZE", "UP", "DOWN", "PEERS", "PATH", "MAGNET",
            ],
            &[false, false, true, true, true, true, true, false, false],
            rows,
        ));
    }
    out(&text)
}

fn stop(daemon: &Client) -> Result<ExitCode, Fail> {
    daemon.call(&ControlRequest::Stop, |_| {})?;
    out(&format!(
        "sta-peerd at {} is stopping\n",
        daemon.socket().display()
    ))
}

fn limits(
    daemon: &Client,
    upload: Option<u64>,
    download: Option<u64>,
    json: bool,
) -> Result<ExitCode, Fail> {
    let v = daemon.call(&ControlRequest::Limits { upload, download }, |_| {})?;
    let (up, down) = sta::control::limits_of(&v).map_err(|e| protocol_error(&e))?;
    if json {
        return out(&format!("{{\"upload\":{up},\"download\":{down}}}\n"));
    }
    use sta::ratelimit::format_rate;
    out(&format!(
        "upload    {}\ndownload  {}\n",
        format_rate(up),
        format_rate(down)
    ))
}

fn protocol_error(e: &str) -> Fail {
    client::protocol_error(e).into()
}

/// Writes to stdout; a closed pipe (`sta list | head -1`) is not an error.
fn out(text: &str) -> Result<ExitCode, Fail> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Fail::Failed(format!("cannot write the output: {e}"))),
    }
}
