//! One TLS session as bytes in and bytes out: ciphertext from the socket
//! goes to [`TlsLink::receive`] (or [`TlsLink::receive_into`], which puts
//! the plaintext straight into the caller's buffer), plaintext for the
//! protocol comes out of [`TlsLink::take_received`]; plaintext to send
//! goes to [`TlsLink::send`], ciphertext for the socket comes out of
//! [`TlsLink::transmit`] (or [`TlsLink::transmit_to`], one vectored write
//! of rustls's records). No socket, no clock (the configuration's).

use super::error::{TlsError, classify};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

/// Plaintext rustls buffers before the handshake ends, and ciphertext it
/// keeps for the socket until [`TlsLink::set_output_limit`] says
/// otherwise. A client says hello and waits for the answer, so this is
/// never near; past it [`TlsLink::send`] takes nothing and the caller
/// closes. After the handshake the caller sets its own limit, and its
/// queues hold what waits.
const BUFFER_LIMIT: usize = 16 * 1024 * 1024;

pub struct TlsLink {
    conn: Connection,
    /// Plaintext taken from rustls that the caller had no room for, from
    /// `received_at` on: rustls holds at most 16 KiB of it, so what a
    /// record gives is taken out at once.
    received: Vec<u8>,
    received_at: usize,
    /// A fatal error happened; nothing more goes in or out but the alert.
    failed: bool,
}

impl TlsLink {
    /// The server side of a session just accepted.
    pub fn server(config: Arc<ServerConfig>) -> Result<TlsLink, TlsError> {
        let conn = ServerConnection::new(config).map_err(|e| TlsError::Local(e.to_string()))?;
        Ok(TlsLink::new(conn.into()))
    }

    /// The client side of a session to `name` (whose certificate must
    /// carry it); its first flight is ready for [`TlsLink::transmit`].
    pub fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<TlsLink, TlsError> {
        let conn =
            ClientConnection::new(config, name).map_err(|e| TlsError::Local(e.to_string()))?;
        Ok(TlsLink::new(conn.into()))
    }

    fn new(mut conn: Connection) -> TlsLink {
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        TlsLink {
            conn,
            received: Vec::new(),
            received_at: 0,
            failed: false,
        }
    }

    /// Takes all of `ciphertext`; the plaintext it carries waits for
    /// [`TlsLink::take_received`]. On an error the session is over: send
    /// what [`TlsLink::transmit`] still gives (the alert telling the other
    /// side why), then close.
    pub fn receive(&mut self, ciphertext: &[u8]) -> Result<(), TlsError> {
        self.receive_into(ciphertext, &mut []).map(|_| ())
    }

    /// Like [`TlsLink::receive`], but the plaintext goes into `out` first
    /// (how much is returned) and only what does not fit waits for
    /// [`TlsLink::read_received`]: a bulk transfer copies each byte once
    /// out of rustls, not through a buffer of ours too.
    pub fn receive_into(
        &mut self,
        mut ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, TlsError> {
        if self.failed {
            return Err(TlsError::Local("the session has already failed".into()));
        }
        let mut filled = 0;
        while !ciphertext.is_empty() {
            // rustls takes a few KiB a call, and refuses more while
            // 16 KiB of plaintext waits in it: every call is drained.
            let n = match self.conn.read_tls(&mut ciphertext) {
                Ok(n) => n,
                Err(e) => return self.fail(TlsError::Local(e.to_string())),
            };
            if let Err(e) = self.conn.process_new_packets() {
                return self.fail(classify(&e));
            }
            filled += self.drain(&mut out[filled..]);
            if n == 0 {
                // After close_notify rustls takes nothing more: what
                // follows the end of the session is dropped.
                break;
            }
        }
        Ok(filled)
    }

    fn fail<T>(&mut self, e: TlsError) -> Result<T, TlsError> {
        self.failed = true;
        Err(e)
    }

    /// Moves the plaintext rustls holds into `out`, and what does not fit
    /// after what already waits; how much went into `out`.
    fn drain(&mut self, out: &mut [u8]) -> usize {
        let mut reader = self.conn.reader();
        let mut n = 0;
        // Plaintext that waits already comes first.
        if self.received_at == self.received.len() {
            while n < out.len() {
                match reader.read(&mut out[n..]) {
                    Ok(0) | Err(_) => return n,
                    Ok(k) => n += k,
                }
            }
        }
        // Only WouldBlock and a clean or unclean end stop it: the
        // plaintext is all in memory already.
        let _ = reader.read_to_end(&mut self.received);
        n
    }

    /// The TCP stream ended. Fine after the other side's close_notify;
    /// otherwise the session was cut (maybe in the middle of a record).
    pub fn end_of_input(&mut self) -> Result<(), TlsError> {
        let mut nothing: &[u8] = &[];
        let _ = self.conn.read_tls(&mut nothing);
        self.drain(&mut []);
        match self.conn.reader().into_first_chunk() {
            Ok(_) => Ok(()),
            Err(_) => Err(TlsError::Truncated),
        }
    }

    /// Moves the plaintext received so far into `into`.
    pub fn take_received(&mut self, into: &mut Vec<u8>) {
        into.extend_from_slice(&self.received[self.received_at..]);
        self.received.clear();
        self.received_at = 0;
    }

    /// Copies as much of the plaintext received so far as fits into
    /// `out`; how much that was.
    pub fn read_received(&mut self, out: &mut [u8]) -> usize {
        let waiting = &self.received[self.received_at..];
        let n = waiting.len().min(out.len());
        out[..n].copy_from_slice(&waiting[..n]);
        self.received_at += n;
        if self.received_at == self.received.len() {
            self.received.clear();
            self.received_at = 0;
        }
        n
    }

    /// Whether plaintext waits for [`TlsLink::take_received`].
    pub fn has_received(&self) -> bool {
        self.received_at < self.received.len()
    }

    /// Encrypts as much of `plaintext` as the buffers allow (buffered
    /// until the handshake is done); returns how much it took.
    pub fn send(&mut self, plaintext: &[u8]) -> usize {
        self.send_vectored(&[IoSlice::new(plaintext)])
    }

    /// Like [`TlsLink::send`] for slices one after the other: records are
    /// filled across them (a block's header and its body share one).
    pub fn send_vectored(&mut self, plaintext: &[IoSlice<'_>]) -> usize {
        if self.failed {
            return 0;
        }
        // Writes into memory only: the one error is a full buffer, seen
        // as a short count.
        self.conn.writer().write_vectored(plaintext).unwrap_or(0)
    }

    /// Caps the ciphertext rustls keeps for the socket (and plaintext
    /// before the handshake ends): past it [`TlsLink::send`] takes less.
    pub fn set_output_limit(&mut self, limit: usize) {
        self.conn.set_buffer_limit(Some(limit));
    }

    /// Appends the ciphertext ready to go out to `out`.
    pub fn transmit(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            match self.conn.write_tls(out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// Ciphertext waits to go out.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Writes ciphertext that is ready into `out` with one vectored write
    /// (no copy into a buffer of ours first); what `out.write_vectored`
    /// said.
    pub fn transmit_to(&mut self, out: &mut dyn Write) -> io::Result<usize> {
        self.conn.write_tls(out)
    }

    /// Ends the session cleanly: a close_notify for [`TlsLink::transmit`].
    pub fn close(&mut self) {
        if !self.failed {
            self.conn.send_close_notify();
        }
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The server name the client asked for (SNI), on the server side.
    pub fn sni(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(s) => s.server_name(),
            Connection::Client(_) => None,
        }
    }

    /// The names of the other side's certificate (common name and DNS
    /// names), once known.
    pub fn peer_names(&self) -> Vec<String> {
        match self.conn.peer_certificates().and_then(|c| c.first()) {
            Some(der) => super::torrent::names_of(der),
            None => Vec::new(),
        }
    }

    /// The common name of the other side's certificate, once known.
    pub fn peer_name(&self) -> Option<String> {
        let der = self.conn.peer_certificates()?.first()?;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let cn = cert.subject().iter_common_name().next()?;
        cn.as_str().ok().map(str::to_owned)
    }
}
