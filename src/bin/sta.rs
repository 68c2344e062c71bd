//! `sta`: the command-line client of a local `sta-peerd`, over its control
//! socket (protocol in `spec/control.md`).
//!
//! Exit status: 0 on success, 1 when the daemon reports an error or the
//! connection fails midway, 2 on wrong usage or when the daemon cannot be
//! reached.

use sta::control::{
    CatalogEntry, ControlRequest, FileReport, MAX_CONTROL_LINE, MAX_REPLY_LINE, Progress, Reply,
    SOCKET_NAME, StatusReport,
};
use sta::json::JsonValue;
use sta::meta::info::to_hex;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const HELP: &str = "\
sta: share and fetch files through the local sta-peerd.

USAGE:
    sta [--control PATH | --dir DIR] COMMAND [ARGS]

COMMANDS:
    share FILE                   hash FILE and offer it to every peer
    list [--json]                the tracker's catalog of shared files
    get NAME|INFOHASH [--out DIR]
                                 download a file, showing progress
    status [--json]              what this sta-peerd holds and does
    stop                         stop sta-peerd

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

Lists the files the tracker knows: name, size, number of pieces, peers
holding some of it, seeders (peers holding all of it) and info hash.

    --json   print the catalog as a JSON array instead of a table
";

const HELP_GET: &str = "\
sta get NAME|INFOHASH [--out DIR]

Downloads a file from every peer that has pieces of it, verifying each
piece, and prints its path when done. Give the info hash (40 hex digits,
see `sta list`) when several files share a name. Progress goes to stderr.
Interrupting `sta get` does not stop the download; see `sta status`.

    --out DIR   where to put the file [default: the daemon's directory]
";

const HELP_STATUS: &str = "\
sta status [--json]

Shows this sta-peerd: peer id, listening address, tracker connection, and
every file it seeds, downloads or checks, with transfer counters.

    --json   print the status as a JSON object
";

const HELP_STOP: &str = "\
sta stop

Asks sta-peerd to exit. Its shared files stop being served.
";

const HELP_DEMO: &str = "\
sta demo

A guided demonstration (not built yet).
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
            "get" => HELP_GET,
            "status" => HELP_STATUS,
            "stop" => HELP_STOP,
            "demo" => HELP_DEMO,
            _ => return Err(usage(format!("unknown command '{command}'"))),
        };
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    if command == "demo" {
        return Ok(demo(args.finish()));
    }

    let daemon = Daemon::locate(control, dir)?;
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
        "get" => {
            let out: Option<PathBuf> = args
                .opt_value_from_os_str("--out", to_path)
                .map_err(arg_error)?;
            let [target] = free_args(args, "get NAME|INFOHASH [--out DIR]")?;
            get(&daemon, &target, out)
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
        _ => Err(usage(format!("unknown command '{command}'"))),
    }
}

// ------------------------------------------------------------------ demo
// `sta demo` is dispatched to `sta::demo::run(args)` once `src/demo.rs`
// exists (with `pub mod demo;` in lib.rs). Until then it is a stub: replace
// the body below with `sta::demo::run(args)` when the module lands. `args`
// are the words after `demo`, global options (--control, --dir) excluded.
fn demo(args: Vec<OsString>) -> ExitCode {
    let _ = args;
    eprintln!("demo: not built yet");
    ExitCode::from(2)
}
// -------------------------------------------------------------- end demo

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

/// Where the daemon's control socket is, and how to start it.
struct Daemon {
    socket: PathBuf,
    /// The `sta-peerd` command line to suggest when it is not running.
    start_hint: String,
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl Daemon {
    /// Flags first (`--control`, `--dir`), then `$STA_CONTROL`, `$STA_DIR`,
    /// then the current directory.
    fn locate(control: Option<PathBuf>, dir: Option<PathBuf>) -> Result<Daemon, Fail> {
        match (control, dir) {
            (Some(_), Some(_)) => Err(usage("give --control or --dir, not both")),
            (Some(socket), None) => Ok(Daemon::from_socket(socket)),
            (None, Some(dir)) => Ok(Daemon::from_dir(dir)),
            (None, None) => Ok(
                match (non_empty_env("STA_CONTROL"), non_empty_env("STA_DIR")) {
                    (Some(socket), _) => Daemon::from_socket(socket),
                    (None, Some(dir)) => Daemon::from_dir(dir),
                    (None, None) => Daemon::from_dir(PathBuf::from(".")),
                },
            ),
        }
    }

    fn from_dir(dir: PathBuf) -> Daemon {
        Daemon {
            socket: dir.join(SOCKET_NAME),
            start_hint: format!("sta-peerd --dir {}", shell_word(&dir)),
        }
    }

    fn from_socket(socket: PathBuf) -> Daemon {
        let dir = match socket.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let start_hint = if socket.file_name().is_some_and(|n| n == SOCKET_NAME) {
            format!("sta-peerd --dir {}", shell_word(&dir))
        } else {
            format!(
                "sta-peerd --dir {} --control {}",
                shell_word(&dir),
                shell_word(&socket)
            )
        };
        Daemon { socket, start_hint }
    }

    /// Connects and sends `request`.
    fn send(&self, request: &ControlRequest) -> Result<Conversation<'_>, Fail> {
        let line = request.to_line();
        if line.len() > MAX_CONTROL_LINE {
            return Err(usage(format!(
                "the request is {} bytes once encoded; the control protocol allows {MAX_CONTROL_LINE}",
                line.len()
            )));
        }
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| {
            Fail::Unreachable(format!(
                "cannot reach sta-peerd at {}: {e}; start it with `{}`",
                self.socket.display(),
                self.start_hint
            ))
        })?;
        stream
            .write_all(line.as_bytes())
            .map_err(|e| self.lost(&e))?;
        Ok(Conversation {
            reader: BufReader::new(stream),
            daemon: self,
        })
    }

    fn lost(&self, e: &std::io::Error) -> Fail {
        Fail::Failed(format!(
            "lost the connection to sta-peerd at {}: {e}",
            self.socket.display()
        ))
    }

    /// Sends `request` and returns the final `{"ok":true,...}` object;
    /// progress events are passed to `on_progress`.
    fn call(
        &self,
        request: &ControlRequest,
        mut on_progress: impl FnMut(&Progress),
    ) -> Result<JsonValue, Fail> {
        let mut conv = self.send(request)?;
        loop {
            let Some(line) = conv.next_line()? else {
                return Err(Fail::Failed(
                    "sta-peerd closed the connection before answering; see its log".to_owned(),
                ));
            };
            match Reply::parse(&line) {
                Ok(Reply::Progress(p)) => on_progress(&p),
                Ok(Reply::Ok(v)) => return Ok(v),
                Ok(Reply::Err(e)) => return Err(Fail::Failed(e.message)),
                Err(e) => return Err(protocol_error(&e)),
            }
        }
    }
}

fn protocol_error(e: &str) -> Fail {
    Fail::Failed(format!("unexpected reply from sta-peerd: {e}"))
}

struct Conversation<'a> {
    reader: BufReader<UnixStream>,
    daemon: &'a Daemon,
}

impl Conversation<'_> {
    /// The next reply line without its `\n`; `None` at a clean end.
    fn next_line(&mut self) -> Result<Option<String>, Fail> {
        let mut buf = Vec::new();
        let limit = MAX_REPLY_LINE as u64;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|e| self.daemon.lost(&e))?;
        if n == 0 {
            return Ok(None);
        }
        if buf.pop() != Some(b'\n') {
            return Err(if n as u64 >= limit {
                protocol_error(&format!("a reply line exceeds {MAX_REPLY_LINE} bytes"))
            } else {
                Fail::Failed("sta-peerd closed the connection in the middle of a reply".to_owned())
            });
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| protocol_error("a reply line is not valid UTF-8"))
    }
}

// -------------------------------------------------------------- commands

fn share(daemon: &Daemon, file: &str) -> Result<ExitCode, Fail> {
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
    let f = file_of(&v)?;
    out(&format!(
        "shared {} ({}, {} pieces of {}), info hash {}\n",
        clean(&f.name),
        human_bytes(f.length),
        f.pieces,
        human_bytes(u64::from(f.piece_length)),
        to_hex(&f.info_hash)
    ))
}

fn list(daemon: &Daemon, json: bool) -> Result<ExitCode, Fail> {
    let v = daemon.call(&ControlRequest::List, |_| {})?;
    let Some(JsonValue::Arr(files)) = v.get("files") else {
        return Err(protocol_error("list reply without a \"files\" array"));
    };
    if json {
        return out(&format!("{}\n", JsonValue::Arr(files.clone())));
    }
    let entries: Vec<CatalogEntry> = files
        .iter()
        .map(CatalogEntry::from_json)
        .collect::<Result<_, _>>()
        .map_err(|e| protocol_error(&e))?;
    if entries.is_empty() {
        return out("the catalog is empty; share a file with `sta share FILE`\n");
    }
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                clean(&e.name),
                human_bytes(e.length),
                e.pieces().to_string(),
                e.peers.to_string(),
                e.seeders.to_string(),
                to_hex(&e.info_hash),
            ]
        })
        .collect();
    out(&table(
        &["NAME", "SIZE", "PIECES", "PEERS", "SEEDERS", "INFO HASH"],
        &[false, true, true, true, true, false],
        rows,
    ))
}

fn get(daemon: &Daemon, target: &str, out_dir: Option<PathBuf>) -> Result<ExitCode, Fail> {
    let out_dir = match out_dir {
        None => None,
        Some(dir) => Some(std::path::absolute(&dir).map_err(|e| {
            Fail::Failed(format!(
                "cannot make '{}' an absolute path: {e}",
                dir.display()
            ))
        })?),
    };
    let request = ControlRequest::Get {
        target: target.to_owned(),
        out_dir,
    };
    let started = Instant::now();
    let mut view = ProgressView::new(std::io::stderr().is_terminal());
    let result = daemon.call(&request, |p| view.update(p));
    view.clear();
    let v = result?;
    let f = file_of(&v)?;
    let secs = started.elapsed().as_secs_f64();
    let mut summary = format!("got {} ({})", clean(&f.name), human_bytes(f.length));
    if view.seen && secs >= 0.5 {
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

fn status(daemon: &Daemon, json: bool) -> Result<ExitCode, Fail> {
    let v = daemon.call(&ControlRequest::Status, |_| {})?;
    if json {
        let mut v = v;
        if let JsonValue::Obj(fields) = &mut v {
            fields.retain(|(k, _)| k != "ok");
        }
        return out(&format!("{v}\n"));
    }
    let s = StatusReport::from_json(&v).map_err(|e| protocol_error(&e))?;
    let mut text = format!(
        "peer id   {}\nlisten    {}\ntracker   {} ({})\nfiles     {}\n",
        to_hex(&s.peer_id),
        s.listen,
        clean(&s.tracker_addr),
        if s.tracker_connected {
            "connected"
        } else {
            "not connected"
        },
        s.files.len()
    );
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
                ]
            })
            .collect();
        text.push('\n');
        text.push_str(&table(
            &[
                "NAME", "STATE", "PIECES", "SIZE", "UP", "DOWN", "PEERS", "PATH",
            ],
            &[false, false, true, true, true, true, true, false],
            rows,
        ));
    }
    out(&text)
}

fn stop(daemon: &Daemon) -> Result<ExitCode, Fail> {
    daemon.call(&ControlRequest::Stop, |_| {})?;
    out(&format!(
        "sta-peerd at {} is stopping\n",
        daemon.socket.display()
    ))
}

fn file_of(v: &JsonValue) -> Result<FileReport, Fail> {
    let file = v
        .get("file")
        .ok_or_else(|| protocol_error("reply without a \"file\""))?;
    FileReport::from_json(file).map_err(|e| protocol_error(&e))
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

// -------------------------------------------------------------- progress

const WAITING: &str = "waiting for peers that have the missing pieces...";
const BAR_WIDTH: usize = 20;

/// The progress of a `get` on stderr: a bar redrawn in place on a
/// terminal, else a line at most once per second.
struct ProgressView {
    tty: bool,
    last_print: Option<Instant>,
    /// Characters of the bar currently drawn (0: none).
    drawn: usize,
    /// At least one progress event arrived.
    seen: bool,
}

impl ProgressView {
    fn new(tty: bool) -> ProgressView {
        ProgressView {
            tty,
            last_print: None,
            drawn: 0,
            seen: false,
        }
    }

    fn update(&mut self, p: &Progress) {
        self.seen = true;
        let mut err = std::io::stderr().lock();
        if self.tty {
            let line = bar_line(p);
            let width = line.chars().count();
            let pad = " ".repeat(self.drawn.saturating_sub(width));
            let _ = write!(err, "\r{line}{pad}");
            let _ = err.flush();
            self.drawn = width;
        } else if self
            .last_print
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            let _ = writeln!(err, "{}", plain_line(p));
            self.last_print = Some(Instant::now());
        }
    }

    /// Erases the bar, so that what follows starts on a clean line.
    fn clear(&mut self) {
        if self.drawn > 0 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(self.drawn));
            let _ = err.flush();
            self.drawn = 0;
        }
    }
}

fn fraction(p: &Progress) -> f64 {
    if p.length > 0 {
        (p.bytes as f64 / p.length as f64).clamp(0.0, 1.0)
    } else if p.pieces > 0 {
        (f64::from(p.have) / f64::from(p.pieces)).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// `42.0%`, never `100.0%` before the last byte.
fn percent(p: &Progress) -> String {
    let pct = fraction(p) * 100.0;
    if pct > 99.9 && p.bytes < p.length {
        "99.9%".to_owned()
    } else {
        format!("{pct:.1}%")
    }
}

fn eta(p: &Progress) -> String {
    if p.rate == 0 {
        return "--:--".to_owned();
    }
    clock(p.length.saturating_sub(p.bytes).div_ceil(p.rate))
}

/// `[#####-----]  42.0%  123.4 MB/s  ETA 0:12  peers 3`
fn bar_line(p: &Progress) -> String {
    let filled = ((fraction(p) * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled));
    if p.waiting {
        format!("[{bar}] {:>6}  {WAITING}  peers {}", percent(p), p.peers)
    } else {
        format!(
            "[{bar}] {:>6}  {:>8}/s  ETA {}  peers {}",
            percent(p),
            human_bytes(p.rate),
            eta(p),
            p.peers
        )
    }
}

/// `disk.img: 42.0% (4.2 MB of 10.0 MB), 123.4 MB/s, ETA 0:12, 3 peers`
fn plain_line(p: &Progress) -> String {
    let head = format!(
        "{}: {} ({} of {})",
        clean(&p.name),
        percent(p),
        human_bytes(p.bytes),
        human_bytes(p.length)
    );
    if p.waiting {
        format!("{head}, {WAITING} ({} peers)", p.peers)
    } else {
        format!(
            "{head}, {}/s, ETA {}, {} peers",
            human_bytes(p.rate),
            eta(p),
            p.peers
        )
    }
}

// ------------------------------------------------------------ formatting

/// Decimal units, one decimal: `999 B`, `1.5 kB`, `123.4 MB`, `4.7 GB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `m:ss`, or `h:mm:ss` from an hour on.
fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Text from the network, safe to print on a terminal: control and
/// bidirectional-override characters become `?`.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi { '?' } else { c }
        })
        .collect()
}

/// A path as a shell word, quoted when it needs to be.
fn shell_word(p: &Path) -> String {
    let s = p.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Columns padded to their widest cell (right-aligned where `right`), two
/// spaces apart; the last column is not padded.
fn table(headers: &[&str], right: &[bool], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header_row).chain(&rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            if i == last {
                if right[i] {
                    text.push_str(&pad);
                }
                text.push_str(cell);
            } else if right[i] {
                text.push_str(&pad);
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&pad);
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(bytes: u64, length: u64, rate: u64, waiting: bool) -> Progress {
        Progress {
            info_hash: [0; 20],
            name: "disk.img".into(),
            have: 0,
            pieces: 10,
            bytes,
            length,
            rate,
            peers: 3,
            waiting,
        }
    }

    #[test]
    fn formats() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(123_400_000), "123.4 MB");
        assert_eq!(human_bytes(999_999_999), "1.0 GB");
        assert_eq!(human_bytes(u64::MAX), "18.4 EB");
        assert_eq!(clock(12), "0:12");
        assert_eq!(clock(3599), "59:59");
        assert_eq!(clock(3600), "1:00:00");
        assert_eq!(clean("a\u{1b}[31mb\u{202e}c"), "a?[31mb?c");
        assert_eq!(shell_word(Path::new("/srv/sta")), "/srv/sta");
        assert_eq!(shell_word(Path::new("/it's here")), r"'/it'\''s here'");
    }

    #[test]
    fn progress_lines() {
        let p = progress(420, 1000, 123_400_000, false);
        assert_eq!(
            bar_line(&p),
            "[########------------]  42.0%  123.4 MB/s  ETA 0:01  peers 3"
        );
        assert_eq!(
            plain_line(&progress(420, 1000, 0, true)),
            format!("disk.img: 42.0% (420 B of 1.0 kB), {WAITING} (3 peers)")
        );
        assert_eq!(percent(&progress(999_999, 1_000_000, 1, false)), "99.9%");
        assert_eq!(percent(&progress(0, 0, 0, false)), "0.0%");
        assert_eq!(eta(&progress(0, 1000, 0, false)), "--:--");
        assert_eq!(eta(&progress(0, 12_000, 1000, false)), "0:12");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME", "SIZE", "HASH"],
            &[false, true, false],
            vec![
                vec!["a".into(), "1.0 kB".into(), "x".into()],
                vec!["long name".into(), "5 B".into(), "y".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME         SIZE  HASH\na          1.0 kB  x\nlong name     5 B  y\n"
        );
    }
}
