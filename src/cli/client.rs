//! A client of a `sta-peerd` control socket (protocol in
//! `spec/control.md`): one request per connection, then reply lines until
//! the final one.

use super::format::{clean, shell_word};
use crate::control::{
    ControlError, ControlRequest, FileReport, MAX_CONTROL_LINE, MAX_REPLY_LINE, Progress, Reply,
    SOCKET_NAME,
};
use serde_json::Value;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Why a request did not get its `{"ok":true,...}` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The request does not fit in one control line.
    TooLong(String),
    /// Nobody answers on the socket; the message says how to start
    /// `sta-peerd`.
    Unreachable(String),
    /// The daemon answered with an error.
    Refused(ControlError),
    /// The connection broke, or carried something that is not this
    /// protocol.
    Broken(String),
}

impl CallError {
    pub fn message(&self) -> &str {
        match self {
            CallError::TooLong(m) | CallError::Unreachable(m) | CallError::Broken(m) => m,
            CallError::Refused(e) => &e.message,
        }
    }
}

/// The message, safe to print on a terminal: the daemon's text may carry
/// names from the network, so control characters become `?`.
impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&clean(self.message()))
    }
}

impl std::error::Error for CallError {}

/// A reply that is not what the protocol says.
pub fn protocol_error(e: &str) -> CallError {
    CallError::Broken(format!("unexpected reply from sta-peerd: {e}"))
}

/// The `file` of a final reply (`share`, `get`).
/// Seeders of `file` in a `list` reply (0 when it is not listed).
pub fn seeders_listed(v: &Value, file: &FileReport) -> u32 {
    v.get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| crate::control::CatalogEntry::from_json(e).ok())
        .filter(|e| e.info_hash == file.info_hash)
        .map(|e| e.seeders)
        .max()
        .unwrap_or(0)
}

pub fn file_of(v: &Value) -> Result<FileReport, CallError> {
    let file = v
        .get("file")
        .ok_or_else(|| protocol_error("reply without a \"file\""))?;
    FileReport::from_json(file).map_err(|e| protocol_error(&e))
}

/// What a call on a thread of its own reports ([`Client::call_on_thread`]).
#[derive(Debug)]
pub enum Event {
    Progress(Progress),
    Done(Result<Value, CallError>),
}

/// Where a daemon's control socket is, and how to start the daemon.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    /// The `sta-peerd` command line to suggest when it is not running.
    start_hint: String,
}

impl Client {
    /// The daemon whose directory is `dir`: its socket is
    /// `dir/sta-peerd.sock`.
    pub fn from_dir(dir: PathBuf) -> Client {
        Client {
            socket: dir.join(SOCKET_NAME),
            start_hint: format!("sta-peerd --dir {}", shell_word(&dir)),
        }
    }

    /// The daemon listening on `socket`.
    pub fn from_socket(socket: PathBuf) -> Client {
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
        Client { socket, start_hint }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Makes the call from a thread of its own, so that the caller can
    /// keep watching a signal flag or its children meanwhile: `send` gets
    /// each progress event, then the outcome. The thread ends when the
    /// daemon answers or goes away.
    pub fn call_on_thread(
        &self,
        request: ControlRequest,
        send: impl Fn(Event) + Send + 'static,
    ) -> std::io::Result<()> {
        let client = self.clone();
        std::thread::Builder::new()
            .name("sta-control".into())
            .spawn(move || {
                let outcome = client.call(&request, |p| send(Event::Progress(p.clone())));
                send(Event::Done(outcome));
            })
            .map(drop)
    }

    /// Sends `request` and returns the final `{"ok":true,...}` object;
    /// progress events are passed to `on_progress`.
    pub fn call(
        &self,
        request: &ControlRequest,
        mut on_progress: impl FnMut(&Progress),
    ) -> Result<Value, CallError> {
        let mut conv = self.send(request)?;
        loop {
            let Some(line) = conv.next_line()? else {
                return Err(CallError::Broken(
                    "sta-peerd closed the connection before answering; see its log".to_owned(),
                ));
            };
            match Reply::parse(&line) {
                Ok(Reply::Progress(p)) => on_progress(&p),
                Ok(Reply::Ok(v)) => return Ok(v),
                Ok(Reply::Err(e)) => return Err(CallError::Refused(e)),
                Err(e) => return Err(protocol_error(&e)),
            }
        }
    }

    /// Connects and sends `request`.
    fn send(&self, request: &ControlRequest) -> Result<Conversation<'_>, CallError> {
        let line = request.to_line();
        if line.len() > MAX_CONTROL_LINE {
            return Err(CallError::TooLong(format!(
                "the request is {} bytes once encoded; the control protocol allows {MAX_CONTROL_LINE}",
                line.len()
            )));
        }
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| {
            CallError::Unreachable(format!(
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
            client: self,
        })
    }

    fn lost(&self, e: &std::io::Error) -> CallError {
        CallError::Broken(format!(
            "lost the connection to sta-peerd at {}: {e}",
            self.socket.display()
        ))
    }
}

struct Conversation<'a> {
    reader: BufReader<UnixStream>,
    client: &'a Client,
}

impl Conversation<'_> {
    /// The next reply line without its `\n`; `None` at a clean end.
    fn next_line(&mut self) -> Result<Option<String>, CallError> {
        let mut buf = Vec::new();
        let limit = MAX_REPLY_LINE as u64;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|e| self.client.lost(&e))?;
        if n == 0 {
            return Ok(None);
        }
        if buf.pop() != Some(b'\n') {
            return Err(if n as u64 >= limit {
                protocol_error(&format!("a reply line exceeds {MAX_REPLY_LINE} bytes"))
            } else {
                CallError::Broken(
                    "sta-peerd closed the connection in the middle of a reply".to_owned(),
                )
            });
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| protocol_error("a reply line is not valid UTF-8"))
    }
}
