//! A TCP connection carrying TLS: the reactor reads and writes plaintext
//! through it as through a plain socket, and it moves ciphertext between
//! the socket and a sans-IO [`TlsLink`]. Failures are logged here, once,
//! with the address and the reason, since here both are known.

use crate::storage::guarded;
use crate::tls::{TlsError, TlsLink};
use log::{debug, warn};
use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

/// Ciphertext kept (in rustls) for the socket before writes are refused
/// (would block), once the handshake is done: the socket's own buffer
/// holds more, and the connection's output queue, which backpressure
/// watches, holds the rest.
const PENDING_LIMIT: usize = 256 * 1024;

/// Most ciphertext read from the socket at a time: several records per
/// read where much data flows (fewer system calls), as much as the
/// reactor's largest read buffer takes.
const READ_CHUNK: usize = 256 * 1024;

/// Least ciphertext read at a time, whatever room the reader has: a whole
/// record (16 KiB and its header and tag), so that a small buffer still
/// gets plaintext from every read.
const MIN_READ: usize = 17 * 1024;

thread_local! {
    /// Ciphertext just read, until rustls takes it (in the same call):
    /// one buffer for all the connections of a loop thread, reused, since
    /// zeroing it for every read would cost more than the read. Used
    /// aligned ([`crate::aligned`]).
    static CHUNK: RefCell<Box<[u8]>> =
        RefCell::new(vec![0; READ_CHUNK + crate::aligned::ALIGN].into_boxed_slice());
}

/// Who the client of a TLS connection accepted here is, once its
/// handshake is done: see [`super::Handler::tls_established`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPeer {
    /// The server name it asked for (SNI).
    pub sni: Option<String>,
    /// The common name and DNS names of its certificate.
    pub names: Vec<String>,
}

/// What [`super::Ctx::dial_tls`] needs: our configuration and the name
/// the server's certificate must carry.
#[derive(Clone)]
pub struct TlsDial {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

pub(super) struct TlsStream {
    pub(super) tcp: TcpStream,
    /// Also holds the ciphertext not yet written, and the plaintext
    /// received that the reader had no room for.
    link: TlsLink,
    /// "from ADDR" or "to ADDR", for logs.
    peer: String,
    handshaken: bool,
    closing: bool,
    /// The server side's news of a finished handshake, not yet taken.
    established: Option<TlsPeer>,
    server: bool,
}

impl TlsStream {
    /// The server side of a connection accepted from `peer`.
    pub(super) fn accepted(
        tcp: TcpStream,
        config: Arc<ServerConfig>,
        peer: Option<SocketAddr>,
    ) -> Result<TlsStream, TlsError> {
        let from = peer.map_or("from ?".into(), |a| format!("from {a}"));
        let mut stream = TlsStream::new(tcp, TlsLink::server(config)?, from);
        stream.server = true;
        Ok(stream)
    }

    /// The client side of a connection being made to `addr`; the
    /// ClientHello goes out once it is connected.
    pub(super) fn dialed(
        tcp: TcpStream,
        dial: TlsDial,
        addr: SocketAddr,
    ) -> Result<TlsStream, TlsError> {
        let to = format!("to {addr} ({})", dial.name.to_str());
        // The ClientHello waits in the link until the socket is connected.
        Ok(TlsStream::new(
            tcp,
            TlsLink::client(dial.config, dial.name)?,
            to,
        ))
    }

    fn new(tcp: TcpStream, link: TlsLink, peer: String) -> TlsStream {
        super::heap::keep_freed_memory();
        TlsStream {
            tcp,
            link,
            peer,
            handshaken: false,
            closing: false,
            established: None,
            server: false,
        }
    }

    /// Once, after the handshake of an accepted connection: who the client is.
    pub(super) fn take_established(&mut self) -> Option<TlsPeer> {
        self.established.take()
    }

    /// Ciphertext waits for the socket.
    pub(super) fn has_pending(&self) -> bool {
        self.link.wants_write()
    }

    /// Writes pending ciphertext, its records straight from rustls with
    /// one `writev` for many; `Ok(false)` when the socket is full.
    pub(super) fn flush_pending(&mut self) -> io::Result<bool> {
        while self.link.wants_write() {
            match self.link.transmit_to(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Ends the session with a close_notify (once) and writes what is
    /// pending; true once nothing is left to write (or nothing can be).
    pub(super) fn finish(&mut self) -> bool {
        if !self.closing {
            self.closing = true;
            self.link.close();
        }
        self.flush_pending().unwrap_or(true)
    }

    fn failed(&mut self, e: &TlsError) -> io::Error {
        match (e, self.handshaken) {
            // A dead peer's session cut short is no news.
            (TlsError::Truncated, true) => debug!("TLS session {}: {e}", self.peer),
            // "from ADDR refused: why", "to ADDR: the other side refused us: why"
            (TlsError::Refused(_), _) => warn!("TLS session {} {e}", self.peer),
            _ => warn!("TLS session {}: {e}", self.peer),
        }
        // The alert that tells the other side why, best effort.
        let _ = self.flush_pending();
        io::Error::other(format!("TLS {e}"))
    }

    fn note_handshake(&mut self) {
        if !self.handshaken && !self.link.is_handshaking() {
            self.handshaken = true;
            self.link.set_output_limit(PENDING_LIMIT);
            let name = self.link.peer_name().unwrap_or_else(|| "?".into());
            debug!("TLS session {} established with {name:?}", self.peer);
            if self.server {
                self.established = Some(TlsPeer {
                    sni: self.link.sni().map(str::to_owned),
                    names: self.link.peer_names(),
                });
            }
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ends when plaintext is there, or the socket has nothing more.
        loop {
            let n = self.link.read_received(buf);
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // As much ciphertext as `buf` takes the plaintext of: no more
            // waits in the link to be copied once again.
            let want = buf.len().clamp(MIN_READ, READ_CHUNK);
            let read = CHUNK.with_borrow_mut(|chunk| {
                self.read_socket(crate::aligned::slice_mut(chunk, want), buf)
            });
            if let Some(n) = read? {
                return Ok(n);
            }
        }
    }
}

impl TlsStream {
    /// One read of the socket into `chunk`, its plaintext into `buf`:
    /// how much, or `None` when it carried none (handshake messages, a
    /// partial record) and the socket may have more.
    fn read_socket(&mut self, chunk: &mut [u8], buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.tcp.read(chunk) {
            Ok(0) => {
                if let Err(e) = self.link.end_of_input() {
                    return Err(self.failed(&e));
                }
                // The last plaintext first, then the end.
                Ok(Some(self.link.read_received(buf)))
            }
            Ok(n) => {
                let plain = match self.link.receive_into(&chunk[..n], buf) {
                    Ok(plain) => plain,
                    Err(e) => return Err(self.failed(&e)),
                };
                self.note_handshake();
                // Handshake messages, and output held until it ended.
                self.flush_pending()?;
                Ok((plain > 0).then_some(plain))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// All the slices (a block's header and its body) are sealed into
    /// records that span them, and the records go out in one write.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // Room in rustls first: what it held may have left by now.
        self.flush_pending()?;
        // rustls reads the slices in user space, and the bodies are maps
        // of shared files: a file truncated meanwhile must fail this
        // session, not kill the daemon with SIGBUS (plain `writev` gets
        // EFAULT instead).
        let bufs = &bufs[..bufs.len().min(guarded::MAX_SLICES)];
        let n = guarded::read_slices(bufs, || self.link.send_vectored(bufs)).map_err(|e| {
            io::Error::other(format!(
                "TLS session {}: a file being sent shrank: {e}",
                self.peer
            ))
        })?;
        self.flush_pending()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            if self.link.wants_write() {
                // Full, and the socket too: its writable edge will come.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            return Err(io::Error::other(format!(
                "TLS session {} cannot send any more",
                self.peer
            )));
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_pending().map(|_| ())
    }
}
