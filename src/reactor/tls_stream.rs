//! A TCP connection carrying TLS: the reactor reads and writes plaintext
//! through it as through a plain socket, and it moves ciphertext between
//! the socket and a sans-IO [`TlsLink`]. Failures are logged here, once,
//! with the address and the reason, since here both are known.

use crate::tls::{TlsError, TlsLink};
use log::{debug, warn};
use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

/// Ciphertext kept for the socket before writes are refused (would
/// block): the socket's own buffer holds more, and the connection's
/// output queue, which backpressure watches, holds the rest.
const PENDING_LIMIT: usize = 256 * 1024;

/// Bytes read from the socket at a time: several records per read where
/// much data flows (fewer system calls), on the loop thread's stack.
const READ_CHUNK: usize = 64 * 1024;

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
    link: TlsLink,
    /// Ciphertext not yet written, from `sent` on.
    pending: Vec<u8>,
    sent: usize,
    /// Plaintext received and not yet read, from `read_at` on.
    plain: Vec<u8>,
    read_at: usize,
    /// Ciphertext read from the socket, reused: zeroing 64 KiB for every
    /// read would cost more than the read.
    chunk: Box<[u8]>,
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
        let mut stream = TlsStream::new(tcp, TlsLink::client(dial.config, dial.name)?, to);
        stream.link.transmit(&mut stream.pending);
        Ok(stream)
    }

    fn new(tcp: TcpStream, link: TlsLink, peer: String) -> TlsStream {
        TlsStream {
            tcp,
            link,
            pending: Vec::new(),
            sent: 0,
            plain: Vec::new(),
            read_at: 0,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
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
        self.sent < self.pending.len()
    }

    /// Writes pending ciphertext; `Ok(false)` when the socket is full.
    pub(super) fn flush_pending(&mut self) -> io::Result<bool> {
        while self.sent < self.pending.len() {
            match self.tcp.write(&self.pending[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pending.clear();
        self.sent = 0;
        Ok(true)
    }

    /// Ends the session with a close_notify (once) and writes what is
    /// pending; true once nothing is left to write (or nothing can be).
    pub(super) fn finish(&mut self) -> bool {
        if !self.closing {
            self.closing = true;
            self.link.close();
            self.link.transmit(&mut self.pending);
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
        self.link.transmit(&mut self.pending);
        let _ = self.flush_pending();
        io::Error::other(format!("TLS {e}"))
    }

    fn note_handshake(&mut self) {
        if !self.handshaken && !self.link.is_handshaking() {
            self.handshaken = true;
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
            if self.read_at < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.read_at);
                buf[..n].copy_from_slice(&self.plain[self.read_at..self.read_at + n]);
                self.read_at += n;
                return Ok(n);
            }
            self.plain.clear();
            self.read_at = 0;
            if self.link.has_received() {
                self.link.take_received(&mut self.plain);
                continue;
            }
            match self.tcp.read(&mut self.chunk) {
                Ok(0) => {
                    return match self.link.end_of_input() {
                        Ok(()) => Ok(0),
                        Err(e) => Err(self.failed(&e)),
                    };
                }
                Ok(n) => {
                    if let Err(e) = self.link.receive(&self.chunk[..n]) {
                        return Err(self.failed(&e));
                    }
                    self.note_handshake();
                    // Handshake messages, and output held until it ended.
                    self.link.transmit(&mut self.pending);
                    self.flush_pending()?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl TlsStream {
    /// Encrypts as much of `buf` as the pending limit leaves room for,
    /// into `pending`; how much that was.
    fn seal(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = PENDING_LIMIT.saturating_sub(self.pending.len() - self.sent);
        if room == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.link.send(&buf[..buf.len().min(room)]);
        if n == 0 {
            return Err(io::Error::other(format!(
                "TLS session {} cannot send any more",
                self.peer
            )));
        }
        self.link.transmit(&mut self.pending);
        Ok(n)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Every slice (a block's header and its body) is sealed first and
    /// the records go out in one write, not one per slice.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.pending.len() - self.sent >= PENDING_LIMIT && !self.flush_pending()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut total = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            let n = self.seal(buf)?;
            total += n;
            if n < buf.len() {
                break;
            }
        }
        self.flush_pending()?;
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_pending().map(|_| ())
    }
}
