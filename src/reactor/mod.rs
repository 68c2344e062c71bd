//! The event loop shared by both daemons: one thread, one `mio::Poll`,
//! connections in a `slab` keyed by token. It moves bytes and enforces
//! limits; what the bytes mean belongs to a [`Handler`].
//!
//! Per connection: a read buffer fed to the handler's incremental decoder,
//! and an [`OutQueue`]. A connection whose queue holds more than the high
//! water mark is not read from until it drains (backpressure instead of
//! unbounded memory). Idle connections are found by a scan every tick, so
//! there is no timer or thread per connection.
//!
//! Connections the handler calls [`Handler::rate_limited`] share two
//! token buckets ([`Reactor::set_rates`]), one for the bytes written to
//! them and one for the bytes read: see `throttle`.

pub mod bind;
mod heap;
mod outqueue;
mod readbuf;
pub mod sent;
mod signals;
mod throttle;
mod tls_stream;
mod udp_batch;

pub use outqueue::{Flushed, OutQueue, SharedBytes};
pub use signals::Signals;
pub use tls_stream::{TlsDial, TlsPeer};

use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use readbuf::ReadBuf;
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use throttle::Throttle;
use tls_stream::TlsStream;

/// Identifies a connection for as long as it is open. Tokens are reused
/// after close, so handlers must forget an id once `close` is called.
pub type ConnId = usize;

/// Limits of the loop; each daemon fills them from its own configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// A connection silent for this long is closed.
    pub idle_timeout: Duration,
    /// Input buffer a busy connection grows to (one read's worth): reads
    /// are large where much data flows, and quiet connections keep 4 KiB.
    pub read_buffer: usize,
    /// Most unprocessed input kept per connection: the protocol's frame
    /// limit plus one read's worth.
    pub max_read_buffer: usize,
    /// Output queued beyond this pauses reading from the connection.
    pub write_high_water: usize,
    /// How often the handler's `tick` runs (and idle sessions are sought).
    pub tick: Duration,
    /// Longest that output queued with [`Ctx::send_later`] waits for the
    /// connection to send something else.
    pub send_later: Duration,
}

/// What the handler wants after seeing a connection's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Input bytes consumed (whole frames).
    pub used: usize,
    /// Close once the queued output is flushed.
    pub close: bool,
}

/// Longest header [`Ctx::send_shared`] keeps inline (a piece message's is 13).
const HEAD_MAX: usize = 16;

/// Requests a handler makes of the loop during a callback; the loop carries
/// them out as soon as the callback returns.
pub struct Ctx<S> {
    commands: Vec<Command<S>>,
}

enum Command<S> {
    Send(ConnId, Vec<u8>),
    SendLater(ConnId, Vec<u8>),
    /// A short header kept inline (so a block costs no allocation), its
    /// length, then shared bytes.
    SendShared(
        ConnId,
        [u8; HEAD_MAX],
        u8,
        Arc<dyn SharedBytes>,
        std::ops::Range<usize>,
    ),
    Dial(SocketAddr, S, Option<TlsDial>),
    /// The TLS configuration of a listener's new connections (none: plain).
    ListenerTls(usize, Option<Arc<rustls::ServerConfig>>),
    Close(ConnId),
    SetRates {
        upload: u64,
        download: u64,
    },
    /// A datagram from the UDP socket of a listener, to anyone.
    SendTo(usize, SocketAddr, Vec<u8>),
    Stop,
}

impl<S> Ctx<S> {
    /// Queues `bytes` on connection `id` (ignored if it has closed).
    pub fn send(&mut self, id: ConnId, bytes: Vec<u8>) {
        self.commands.push(Command::Send(id, bytes));
    }

    /// Queues `bytes` on connection `id`, in order with everything else,
    /// but sends them only with the connection's next other output or
    /// within [`Limits::send_later`]: a small message nothing waits on
    /// then shares a packet (and a wakeup of the peer) with others.
    pub fn send_later(&mut self, id: ConnId, bytes: Vec<u8>) {
        self.commands.push(Command::SendLater(id, bytes));
    }

    /// Queues `head`, then `range` of `shared` without copying it (a
    /// piece message: its header, then the mapped file's bytes).
    pub fn send_shared(
        &mut self,
        id: ConnId,
        head: &[u8],
        shared: Arc<dyn SharedBytes>,
        range: std::ops::Range<usize>,
    ) {
        let mut inline = [0; HEAD_MAX];
        let len = match inline.get_mut(..head.len()) {
            Some(dst) => {
                dst.copy_from_slice(head);
                head.len()
            }
            None => {
                self.send(id, head.to_vec());
                0
            }
        };
        self.commands
            .push(Command::SendShared(id, inline, len as u8, shared, range));
    }

    /// Opens a TCP connection to `addr` carrying `session`; the handler's
    /// `dialed` is called with its id, and `close` if it fails.
    pub fn dial(&mut self, addr: SocketAddr, session: S) {
        self.commands.push(Command::Dial(addr, session, None));
    }

    /// As [`Ctx::dial`], the connection carrying a TLS session as the
    /// client; a failed handshake closes it (logged with the reason).
    pub fn dial_tls(&mut self, addr: SocketAddr, session: S, tls: TlsDial) {
        self.commands.push(Command::Dial(addr, session, Some(tls)));
    }

    /// Serves TLS with `config` (or plain, with `None`) on the connections
    /// listener number `listener` accepts from now on (a SIGHUP's new
    /// certificate, say); open ones keep theirs.
    pub fn set_listener_tls(&mut self, listener: usize, config: Option<Arc<rustls::ServerConfig>>) {
        self.commands.push(Command::ListenerTls(listener, config));
    }

    /// Closes connection `id` once its queued output is flushed.
    pub fn close(&mut self, id: ConnId) {
        self.commands.push(Command::Close(id));
    }

    /// Sets the limits of [`Reactor::set_rates`] (bytes per second, 0 for
    /// none) from now on.
    pub fn set_rates(&mut self, upload: u64, download: u64) {
        self.commands.push(Command::SetRates { upload, download });
    }

    /// Sends `bytes` as one datagram to `to` from the UDP socket of
    /// listener number `listener`, best effort (dropped if the socket's
    /// buffer is full, as UDP may drop it anyway).
    pub fn send_to(&mut self, listener: usize, to: SocketAddr, bytes: Vec<u8>) {
        self.commands.push(Command::SendTo(listener, to, bytes));
    }

    /// Ends the loop after this callback, closing every connection.
    pub fn stop(&mut self) {
        self.commands.push(Command::Stop);
    }
}

/// The protocol side of a daemon, called by the loop. No method may block.
pub trait Handler {
    type Session;

    /// A connection was accepted on listener number `listener`. Returns its
    /// session, or `None` to refuse it; either way `out` is flushed first
    /// (a refusal can carry an error frame).
    fn open(
        &mut self,
        ctx: &mut Ctx<Self::Session>,
        id: ConnId,
        listener: usize,
        peer: Option<SocketAddr>,
        out: &mut OutQueue,
    ) -> Option<Self::Session>;

    /// A connection asked for with [`Ctx::dial`] got its id; output queued
    /// now is sent once the connection is established.
    fn dialed(
        &mut self,
        _ctx: &mut Ctx<Self::Session>,
        _id: ConnId,
        _session: &mut Self::Session,
        _out: &mut OutQueue,
    ) {
    }

    /// New input arrived; `input` holds every byte not yet consumed.
    fn data(
        &mut self,
        ctx: &mut Ctx<Self::Session>,
        id: ConnId,
        session: &mut Self::Session,
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow;

    /// The TLS handshake of a connection accepted on a TLS listener is
    /// done; `peer` says what it asked for and who it is. Returns false to
    /// close it before any of its input reaches [`Handler::data`].
    fn tls_established(
        &mut self,
        _id: ConnId,
        _session: &mut Self::Session,
        _peer: &TlsPeer,
    ) -> bool {
        true
    }

    /// A connection is refused because `max_connections` are open; `out`
    /// is written once, best effort, before it is closed.
    fn refuse(&mut self, _out: &mut OutQueue) {}

    /// The connection has been silent past the idle timeout. Returns true
    /// to close it after `out` is flushed (best effort), false to keep it
    /// (a session that legitimately waits).
    fn idle(&mut self, _id: ConnId, _session: &mut Self::Session, _out: &mut OutQueue) -> bool {
        true
    }

    /// The connection is gone (closed by either side, or a dial failed);
    /// drop everything it held.
    fn close(&mut self, ctx: &mut Ctx<Self::Session>, id: ConnId, session: Self::Session);

    /// Called every `Limits::tick`, for timers of the handler's own.
    fn tick(&mut self, _ctx: &mut Ctx<Self::Session>, _now: Instant) {}

    /// Whether the connection carrying `session` counts against the rate
    /// limits ([`Reactor::set_rates`]); asked once, when it is registered
    /// (after [`Handler::open`], or when a dial starts).
    fn rate_limited(&self, _session: &Self::Session) -> bool {
        false
    }

    /// Whether the handler paces its output to `session` by what left the
    /// host ([`Handler::sent`]); asked once, when it is registered. Such a
    /// TCP socket holds little unsent ([`sent::NOTSENT_LOWAT`]).
    fn reports_sent(&self, _session: &Self::Session) -> bool {
        false
    }

    /// Of all the bytes queued on the connection since it began, the
    /// first `left` have left the host (written, and sent by the kernel).
    /// Called after writes that move it, and each tick.
    fn sent(
        &mut self,
        _ctx: &mut Ctx<Self::Session>,
        _id: ConnId,
        _session: &mut Self::Session,
        _left: u64,
    ) {
    }

    /// The loop's [`Waker`] was woken by another thread.
    fn wake(&mut self, _ctx: &mut Ctx<Self::Session>) {}

    /// SIGHUP arrived: re-read the configuration, apply what can change
    /// while running, and say what cannot.
    fn reload(&mut self, _ctx: &mut Ctx<Self::Session>) {}

    /// A datagram of at most [`MAX_DATAGRAM`] bytes (longer ones arrive
    /// cut) came from `from` to the UDP socket of listener number
    /// `listener`. A reply left in `reply` is sent back to `from` at once,
    /// best effort: if the socket's buffer is full it is dropped, as UDP
    /// may drop it anyway. Datagrams to others go through
    /// [`Ctx::send_to`]; what the handler asks of `ctx` (bytes for a
    /// connection, say) is carried out once the batch is handled.
    fn datagram(
        &mut self,
        _ctx: &mut Ctx<Self::Session>,
        _listener: usize,
        _from: SocketAddr,
        _bytes: &[u8],
        _reply: &mut Vec<u8>,
    ) {
    }
}

/// Tells the handler what of `conn`'s output left the host, if that moved.
fn report_sent<H: Handler>(
    handler: &mut H,
    ctx: &mut Ctx<H::Session>,
    id: ConnId,
    conn: &mut Conn<H::Session>,
) {
    // All of it reported gone: nothing can move, and no system call asks.
    if conn.last_left == conn.out.taken() {
        return;
    }
    let left = conn.out.taken().saturating_sub(conn.stream.unsent());
    if left > conn.last_left {
        conn.last_left = left;
        handler.sent(ctx, id, &mut conn.session, left);
    }
}

/// The largest datagram a UDP listener reads; the rest of a longer one is
/// lost.
pub const MAX_DATAGRAM: usize = 8 * 1024;

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
    /// Not a listener of connections: every datagram goes to
    /// [`Handler::datagram`].
    Udp(UdpSocket),
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
            Stream::Tls(s) => &mut s.tcp,
        }
    }

    /// TLS output (a handshake message, an alert) waits for the socket,
    /// whether or not the connection's queue holds anything.
    fn tls_pending(&self) -> bool {
        matches!(self, Stream::Tls(s) if s.has_pending())
    }

    fn flush_tls(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tls(s) => s.flush_pending(),
            _ => Ok(true),
        }
    }

    fn take_established(&mut self) -> Option<TlsPeer> {
        match self {
            Stream::Tls(s) => s.take_established(),
            _ => None,
        }
    }

    /// Sends a FIN after what was written (the other side reads an end).
    fn half_close(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tls(s) => s.tcp.shutdown(std::net::Shutdown::Write),
        };
    }

    /// Reads and drops what the socket holds, below TLS: true once the
    /// other side closed (or the socket failed).
    fn drain_input(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let r = match self {
                Stream::Tcp(s) => s.read(&mut buf),
                Stream::Unix(s) => s.read(&mut buf),
                Stream::Tls(s) => s.tcp.read(&mut buf),
            };
            match r {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    /// Before closing: TLS's close_notify. True once nothing is left to
    /// write.
    fn finish(&mut self) -> bool {
        match self {
            Stream::Tls(s) => s.finish(),
            _ => true,
        }
    }

    /// Bytes written that the kernel has not sent (TLS: ciphertext).
    fn unsent(&self) -> u64 {
        match self {
            Stream::Tcp(s) => sent::unsent(s),
            Stream::Tls(s) => sent::unsent(&s.tcp),
            Stream::Unix(_) => 0,
        }
    }

    fn pace(&self) {
        match self {
            Stream::Tcp(s) => sent::pace(s),
            Stream::Tls(s) => sent::pace(&s.tcp),
            Stream::Unix(_) => {}
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Tls(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Conn<S> {
    stream: Stream,
    session: S,
    input: ReadBuf,
    out: OutQueue,
    last_active: Instant,
    /// Close as soon as `out` is flushed.
    closing: bool,
    /// Reading is paused by backpressure.
    paused: bool,
    writable: bool,
    /// A dialed connection not yet known to be established.
    connecting: bool,
    /// Output was queued by `Ctx::send` and awaits the end-of-iteration
    /// flush.
    dirty: bool,
    /// All of `out` came from `Ctx::send_later` (`later_len` bytes; more
    /// means a handler wrote to `out` itself): it waits for other output
    /// or the `send_later` delay, whatever events the connection sees
    /// meanwhile.
    later_only: bool,
    later_len: usize,
    /// Counts against the rate limits.
    limited: bool,
    /// The handler hears what left (`Handler::sent`), last `left`.
    reports_sent: bool,
    last_left: u64,
    /// Waits in the queue of `Reactor::upload` / `Reactor::download`.
    up_queued: bool,
    down_queued: bool,
}

/// Tokens at or above this value belong to listeners and the signal pipe.
const FIRST_SPECIAL: usize = usize::MAX / 2;
const SIGNAL: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const RELOAD: Token = Token(usize::MAX - 3);

pub struct Reactor<H: Handler> {
    poll: Poll,
    listeners: Vec<Listener>,
    /// Each TCP listener's TLS configuration, by listener number.
    listener_tls: Vec<Option<Arc<rustls::ServerConfig>>>,
    conns: Slab<Conn<H::Session>>,
    limits: Limits,
    signals: Option<Signals>,
    reload: Option<Signals>,
    waker: Arc<Waker>,
    ctx: Ctx<H::Session>,
    stopping: bool,
    /// Connections with output queued by `Ctx::send` this iteration.
    dirty: Vec<ConnId>,
    /// Connections holding output of `Ctx::send_later`, and when the
    /// first of it is due.
    later: Vec<ConnId>,
    later_due: Option<Instant>,
    /// Datagram buffers, in and out (allocated with the first UDP socket).
    udp: Option<Box<udp_batch::UdpBatch>>,
    udp_out: Vec<u8>,
    /// Rate limits of the connections that are `limited`: bytes written,
    /// bytes read.
    upload: Throttle,
    download: Throttle,
}

impl<H: Handler> Reactor<H> {
    pub fn new(limits: Limits) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Reactor {
            poll,
            listeners: Vec::new(),
            listener_tls: Vec::new(),
            conns: Slab::new(),
            limits,
            signals: None,
            reload: None,
            waker,
            ctx: Ctx {
                commands: Vec::new(),
            },
            stopping: false,
            dirty: Vec::new(),
            later: Vec::new(),
            later_due: None,
            udp: None,
            udp_out: Vec::new(),
            upload: Throttle::default(),
            download: Throttle::default(),
        })
    }

    /// Limits the bytes written to and read from the connections the
    /// handler calls [`Handler::rate_limited`], together, to `upload` and
    /// `download` bytes per second (0: no limit), from now on. With no
    /// limit the loop reads and writes as if there were none to check.
    pub fn set_rates(&mut self, upload: u64, download: u64) {
        let now = Instant::now();
        self.upload.set_rate(now, upload);
        self.download.set_rate(now, download);
    }

    /// Adds a listener; its index is the `listener` number handlers see.
    pub fn listen(&mut self, mut listener: Listener) -> io::Result<usize> {
        let index = self.listeners.len();
        let token = Token(FIRST_SPECIAL + index);
        match &mut listener {
            Listener::Tcp(l) => {
                widen_backlog(l);
                self.poll
                    .registry()
                    .register(l, token, Interest::READABLE)?
            }
            Listener::Unix(l) => self
                .poll
                .registry()
                .register(l, token, Interest::READABLE)?,
            Listener::Udp(l) => {
                self.udp.get_or_insert_with(Box::default);
                self.poll
                    .registry()
                    .register(l, token, Interest::READABLE)?
            }
        }
        self.listeners.push(listener);
        Ok(index)
    }

    /// Makes the loop return cleanly on SIGINT or SIGTERM, and call the
    /// handler's `reload` on SIGHUP.
    pub fn stop_on_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::stop()?;
        self.poll
            .registry()
            .register(signals.source(), SIGNAL, Interest::READABLE)?;
        self.signals = Some(signals);
        let mut reload = Signals::reload()?;
        self.poll
            .registry()
            .register(reload.source(), RELOAD, Interest::READABLE)?;
        self.reload = Some(reload);
        Ok(())
    }

    /// Wakes the loop from another thread; the handler's `wake` runs.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Lets a handler issue commands before the loop starts (dialing the
    /// tracker, for instance).
    pub fn ctx(&mut self) -> &mut Ctx<H::Session> {
        &mut self.ctx
    }

    /// Runs until a signal arrives or the handler stops it, then closes
    /// every session.
    pub fn run(&mut self, handler: &mut H) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + self.limits.tick;
        self.apply(handler);
        while !self.stopping {
            let mut wake_at = self.later_due.map_or(next_tick, |d| d.min(next_tick));
            let now = Instant::now();
            for due in [self.upload.due(now), self.download.due(now)] {
                wake_at = due.map_or(wake_at, |d| d.min(wake_at));
            }
            let timeout = wake_at.saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    SIGNAL => {
                        if self.signals.as_mut().is_some_and(Signals::received) {
                            info!("signal received, closing {} sessions", self.conns.len());
                            self.stopping = true;
                        }
                    }
                    WAKER => {
                        handler.wake(&mut self.ctx);
                        self.apply(handler);
                    }
                    RELOAD => {
                        if self.reload.as_mut().is_some_and(Signals::received) {
                            info!("SIGHUP received: reloading the configuration");
                            handler.reload(&mut self.ctx);
                            self.apply(handler);
                        }
                    }
                    Token(t) if t >= FIRST_SPECIAL => self.accept(handler, t - FIRST_SPECIAL),
                    Token(id) => {
                        if event.is_writable() {
                            self.on_writable(handler, id);
                        }
                        if event.is_readable() || event.is_read_closed() {
                            // A FIN already queued raises no new edge: only
                            // without one may a short read end the reading.
                            let short_read_drains = SHORT_READ_DRAINS && !event.is_read_closed();
                            self.on_readable_with(handler, id, short_read_drains);
                        }
                    }
                }
            }
            let now = Instant::now();
            if self.later_due.is_some_and(|d| now >= d) {
                self.flush_later(handler);
            }
            if now >= next_tick {
                self.close_idle(handler, now);
                self.report_all_sent(handler);
                handler.tick(&mut self.ctx, now);
                self.apply(handler);
                next_tick = now + self.limits.tick;
            }
            self.flush_dirty(handler);
            if !self.upload.is_idle() || !self.download.is_idle() {
                self.serve_throttled(handler);
                self.flush_dirty(handler);
            }
        }
        self.shutdown(handler);
        Ok(())
    }

    /// Carries out what the handler asked for during its last callback.
    fn apply(&mut self, handler: &mut H) {
        while !self.ctx.commands.is_empty() {
            let commands = std::mem::take(&mut self.ctx.commands);
            for command in commands {
                match command {
                    // Flushed once at the end of the loop iteration, so that
                    // many small messages to one peer (a have per verified
                    // piece) cost one write, not one each.
                    Command::Send(id, bytes) => {
                        if let Some(conn) = self.conns.get_mut(id) {
                            conn.later_only = false;
                            conn.out.push_vec(bytes);
                            self.mark_dirty(id);
                        }
                    }
                    Command::SendLater(id, bytes) => {
                        if let Some(conn) = self.conns.get_mut(id) {
                            conn.later_only |= conn.out.is_empty();
                            conn.out.push(&bytes);
                            conn.later_len = conn.out.len();
                            self.later.push(id);
                            let due = Instant::now() + self.limits.send_later;
                            self.later_due.get_or_insert(due);
                        }
                    }
                    Command::SendShared(id, head, len, shared, range) => {
                        if let Some(conn) = self.conns.get_mut(id) {
                            conn.later_only = false;
                            conn.out.push(&head[..usize::from(len)]);
                            conn.out.push_shared(shared, range);
                            self.mark_dirty(id);
                        }
                    }
                    Command::Close(id) => {
                        if let Some(conn) = self.conns.get_mut(id) {
                            conn.closing = true;
                            self.after_io(handler, id);
                        }
                    }
                    Command::Dial(addr, session, tls) => self.dial(handler, addr, session, tls),
                    Command::ListenerTls(index, config) => self.set_listener_tls(index, config),
                    Command::SetRates { upload, download } => self.set_rates(upload, download),
                    Command::SendTo(index, to, bytes) => self.send_datagram(index, to, &bytes),
                    Command::Stop => self.stopping = true,
                }
            }
        }
    }

    fn send_datagram(&mut self, index: usize, to: SocketAddr, bytes: &[u8]) {
        if let Some(Listener::Udp(socket)) = self.listeners.get(index)
            && let Err(e) = socket.send_to(bytes, to)
        {
            debug!("udp listener {index}: datagram to {to} dropped: {e}");
        }
    }

    fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(id)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Writes out what `Ctx::send` queued during this iteration (and what
    /// a handler's callback asked for since the last `apply`).
    fn flush_dirty(&mut self, handler: &mut H) {
        self.apply(handler);
        while !self.dirty.is_empty() {
            for id in std::mem::take(&mut self.dirty) {
                if let Some(conn) = self.conns.get_mut(id) {
                    conn.dirty = false;
                    self.after_io(handler, id);
                }
            }
            self.apply(handler);
        }
    }

    /// Sends what `Ctx::send_later` queued (what other output has not
    /// taken along already).
    fn flush_later(&mut self, handler: &mut H) {
        self.later_due = None;
        let mut ids = std::mem::take(&mut self.later);
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            // A stale id (closed, maybe reused) only gets an early flush.
            if let Some(conn) = self.conns.get_mut(id) {
                conn.later_only = false;
            }
            self.after_io(handler, id);
        }
        self.apply(handler);
    }

    /// As [`Ctx::set_listener_tls`], before the loop runs.
    pub fn set_listener_tls(&mut self, index: usize, config: Option<Arc<rustls::ServerConfig>>) {
        if self.listener_tls.len() <= index {
            self.listener_tls.resize(index + 1, None);
        }
        self.listener_tls[index] = config;
    }

    fn dial(
        &mut self,
        handler: &mut H,
        addr: SocketAddr,
        session: H::Session,
        tls: Option<TlsDial>,
    ) {
        let stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                debug!("cannot dial {addr}: {e}");
                let id = self.conns.vacant_key();
                return handler.close(&mut self.ctx, id, session);
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = match tls {
            None => Stream::Tcp(stream),
            Some(tls) => match TlsStream::dialed(stream, tls, addr) {
                Ok(s) => Stream::Tls(Box::new(s)),
                Err(e) => {
                    warn!("cannot start TLS to {addr}: {e}");
                    let id = self.conns.vacant_key();
                    return handler.close(&mut self.ctx, id, session);
                }
            },
        };
        let out = OutQueue::default();
        let Some(id) = self.insert(handler, stream, session, out, true) else {
            return;
        };
        if let Some(conn) = self.conns.get_mut(id) {
            handler.dialed(&mut self.ctx, id, &mut conn.session, &mut conn.out);
        }
    }

    fn accept(&mut self, handler: &mut H, index: usize) {
        if matches!(self.listeners.get(index), Some(Listener::Udp(_))) {
            self.receive(handler, index);
            // What the handler sent to others while reading.
            return self.apply(handler);
        }
        loop {
            let accepted = match self.listeners.get(index) {
                Some(Listener::Tcp(l)) => l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    (Stream::Tcp(s), Some(a))
                }),
                Some(Listener::Unix(l)) => l.accept().map(|(s, _)| (Stream::Unix(s), None)),
                Some(Listener::Udp(_)) | None => return,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let tls = self.listener_tls.get(index).cloned().flatten();
                    match (stream, tls) {
                        (Stream::Tcp(s), Some(config)) => {
                            match TlsStream::accepted(s, config, peer) {
                                Ok(s) => self.open(handler, index, Stream::Tls(Box::new(s)), peer),
                                Err(e) => warn!("cannot start TLS from {peer:?}: {e}"),
                            }
                        }
                        (stream, _) => self.open(handler, index, stream, peer),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: stop accepting for this round
                    // rather than spin; the listener stays registered.
                    warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Reads datagrams until the socket is drained (readiness is edge
    /// triggered), a batch per system call, handing each to the handler
    /// and sending the batch's replies together.
    fn receive(&mut self, handler: &mut H, index: usize) {
        let (Some(Listener::Udp(socket)), Some(batch)) =
            (self.listeners.get(index), self.udp.as_mut())
        else {
            return;
        };
        loop {
            let (n, full) = match batch.recv(socket) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors of earlier sends (ECONNREFUSED) and the like
                // concern one client, not the socket: keep reading.
                Err(e) => {
                    debug!("udp listener {index}: {e}");
                    continue;
                }
            };
            for i in 0..n {
                let Some((from, bytes)) = batch.datagram(i) else {
                    break;
                };
                self.udp_out.clear();
                handler.datagram(&mut self.ctx, index, from, bytes, &mut self.udp_out);
                if !self.udp_out.is_empty() {
                    batch.reply(from, &self.udp_out);
                }
            }
            let dropped = batch.send(socket);
            if dropped > 0 {
                debug!("udp listener {index}: {dropped} replies dropped");
            }
            // A batch that was not full emptied the socket: a datagram
            // that comes later raises a new readiness event, so the read
            // that would only say WouldBlock is spared.
            if !full {
                return;
            }
        }
    }

    fn open(
        &mut self,
        handler: &mut H,
        listener: usize,
        mut stream: Stream,
        peer: Option<SocketAddr>,
    ) {
        let id = self.conns.vacant_key();
        let mut out = OutQueue::default();
        let session = if self.conns.len() >= self.limits.max_connections {
            handler.refuse(&mut out);
            None
        } else {
            handler.open(&mut self.ctx, id, listener, peer, &mut out)
        };
        let Some(session) = session else {
            // Refused: best effort to deliver the handler's error frame.
            let _ = out.flush(&mut stream);
            debug!("refused connection from {peer:?}");
            return;
        };
        if self.insert(handler, stream, session, out, false).is_some() {
            self.apply(handler);
        }
    }

    /// Registers a connection; on failure its session is closed at once.
    fn insert(
        &mut self,
        handler: &mut H,
        mut stream: Stream,
        session: H::Session,
        out: OutQueue,
        connecting: bool,
    ) -> Option<ConnId> {
        let limited = handler.rate_limited(&session);
        let reports_sent = handler.reports_sent(&session);
        if reports_sent {
            stream.pace();
        }
        let entry = self.conns.vacant_entry();
        let id = entry.key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(stream.source(), Token(id), interest)
        {
            warn!("cannot register connection: {e}");
            handler.close(&mut self.ctx, id, session);
            return None;
        }
        entry.insert(Conn {
            stream,
            session,
            input: ReadBuf::default(),
            out,
            last_active: Instant::now(),
            closing: false,
            paused: false,
            writable: false,
            connecting,
            dirty: false,
            later_only: false,
            later_len: 0,
            limited,
            reports_sent,
            last_left: 0,
            up_queued: false,
            down_queued: false,
        });
        Some(id)
    }

    fn on_readable(&mut self, handler: &mut H, id: ConnId) {
        self.on_readable_with(handler, id, false);
    }

    /// Reads and handles; `short_read_drains`: a short read ends the
    /// reading (see [`SHORT_READ_DRAINS`]).
    fn on_readable_with(&mut self, handler: &mut H, id: ConnId, short_read_drains: bool) {
        let Some(conn) = self.conns.get_mut(id) else {
            return; // a stale event for a closed connection
        };
        if conn.paused || conn.closing || conn.connecting {
            return;
        }
        if conn.limited && self.download.is_limited() {
            // Read when the bucket allows, in turn with the others.
            if !conn.down_queued {
                conn.down_queued = true;
                self.download.queue.push_back(id);
            }
            return;
        }
        let budget = usize::MAX;
        match read_and_handle(
            conn,
            handler,
            &mut self.ctx,
            id,
            &self.limits,
            budget,
            short_read_drains,
        ) {
            Ok(_) => self.after_io(handler, id),
            Err(e) => self.read_failed(handler, id, e),
        }
        self.apply(handler);
    }

    /// Ends a connection whose read failed. A clean end of input is the
    /// peer's half-close after its last request (`echo status | nc -U`):
    /// the handler's answer to it may still sit in its commands, so they
    /// are carried out first and the connection closes once they are sent.
    fn read_failed(&mut self, handler: &mut H, id: ConnId, e: io::Error) {
        debug!("connection {id}: {e}");
        if e.kind() != io::ErrorKind::UnexpectedEof {
            return self.drop_conn(handler, id);
        }
        self.apply(handler);
        if let Some(conn) = self.conns.get_mut(id) {
            conn.closing = true;
            self.after_io(handler, id);
        }
    }

    fn on_writable(&mut self, handler: &mut H, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.connecting {
            // Writable after a non-blocking connect: it either succeeded or
            // failed; take_error and peer_addr tell which.
            let failed = match &conn.stream {
                Stream::Tcp(s) => match s.take_error() {
                    Ok(Some(e)) | Err(e) => Some(e),
                    Ok(None) => s.peer_addr().err(),
                },
                Stream::Tls(s) => match s.tcp.take_error() {
                    Ok(Some(e)) | Err(e) => Some(e),
                    Ok(None) => s.tcp.peer_addr().err(),
                },
                Stream::Unix(_) => None,
            };
            if let Some(e) = failed {
                debug!("connection {id}: connect failed: {e}");
                self.drop_conn(handler, id);
                return self.apply(handler);
            }
            conn.connecting = false;
            conn.last_active = Instant::now();
        }
        conn.writable = true;
        self.after_io(handler, id);
    }

    /// Flushes output, applies backpressure and resumes reading when the
    /// queue drains, and closes connections that asked for it.
    fn after_io(&mut self, handler: &mut H, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.writable && conn.stream.tls_pending() {
            match conn.stream.flush_tls() {
                Ok(done) => conn.writable = done,
                Err(e) => {
                    debug!("connection {id}: write failed: {e}");
                    return self.drop_conn(handler, id);
                }
            }
        }
        let may_wait = conn.later_only && conn.out.len() == conn.later_len && !conn.closing;
        if conn.writable && !conn.out.is_empty() && !may_wait {
            if conn.limited && self.upload.is_limited() {
                // Write when the bucket allows, in turn with the others.
                if !conn.up_queued {
                    conn.up_queued = true;
                    self.upload.queue.push_back(id);
                }
            } else {
                match conn.out.flush(&mut conn.stream) {
                    Ok(done) => conn.writable = done,
                    Err(e) => {
                        debug!("connection {id}: write failed: {e}");
                        return self.drop_conn(handler, id);
                    }
                }
            }
        }
        self.after_flush(handler, id);
    }

    /// The part of [`Reactor::after_io`] that follows a write: closing,
    /// and backpressure.
    fn after_flush(&mut self, handler: &mut H, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.reports_sent && !conn.connecting {
            report_sent(handler, &mut self.ctx, id, conn);
        }
        if conn.closing {
            if conn.out.is_empty() && !conn.connecting && conn.stream.finish() {
                self.drop_conn(handler, id);
            }
            return;
        }
        let full = conn.out.len() > self.limits.write_high_water;
        if conn.paused && !full {
            // The readiness edge may have passed while paused: read now.
            conn.paused = false;
            self.on_readable(handler, id);
        } else {
            conn.paused = full;
        }
    }

    /// Gives the connections waiting for the rate limits their turns.
    fn serve_throttled(&mut self, handler: &mut H) {
        self.serve_writers(handler);
        self.serve_readers(handler);
    }

    /// One round of the upload queue: each connection in it writes its
    /// share of the credit, and queues again if it has more to write.
    fn serve_writers(&mut self, handler: &mut H) {
        let now = Instant::now();
        let mut turns = self.upload.queue.len();
        while turns > 0 {
            turns -= 1;
            let Some(id) = self.upload.queue.pop_front() else {
                break;
            };
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            conn.up_queued = false;
            if !self.upload.is_limited() {
                self.after_io(handler, id);
                continue;
            }
            let Some(share) = self.upload.share(now, turns + 1) else {
                // Not enough credit: first in line next time.
                conn.up_queued = true;
                self.upload.queue.push_front(id);
                break;
            };
            let may_wait = conn.later_only && conn.out.len() == conn.later_len && !conn.closing;
            if conn.writable && !conn.out.is_empty() && !may_wait {
                match conn.out.flush_up_to(&mut conn.stream, share) {
                    Ok((n, end)) => {
                        self.upload.spend(n);
                        match end {
                            Flushed::Empty => {}
                            Flushed::WouldBlock => conn.writable = false,
                            Flushed::Budget => {
                                conn.up_queued = true;
                                self.upload.queue.push_back(id);
                            }
                        }
                    }
                    Err(e) => {
                        debug!("connection {id}: write failed: {e}");
                        self.drop_conn(handler, id);
                        continue;
                    }
                }
            }
            self.after_flush(handler, id);
        }
        self.apply(handler);
    }

    /// One round of the download queue: each connection in it reads its
    /// share of the credit, and queues again if the socket may hold more.
    fn serve_readers(&mut self, handler: &mut H) {
        let now = Instant::now();
        let mut turns = self.download.queue.len();
        while turns > 0 {
            turns -= 1;
            let Some(id) = self.download.queue.pop_front() else {
                break;
            };
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            conn.down_queued = false;
            if !self.download.is_limited() {
                self.on_readable(handler, id);
                continue;
            }
            if conn.paused || conn.closing || conn.connecting {
                continue; // queued again when it may read
            }
            let Some(share) = self.download.share(now, turns + 1) else {
                conn.down_queued = true;
                self.download.queue.push_front(id);
                break;
            };
            match read_and_handle(conn, handler, &mut self.ctx, id, &self.limits, share, false) {
                Ok((end, n)) => {
                    self.download.spend(n);
                    if end == ReadEnd::Budget {
                        conn.down_queued = true;
                        self.download.queue.push_back(id);
                    }
                    self.after_io(handler, id);
                }
                Err(e) => self.read_failed(handler, id, e),
            }
            self.apply(handler);
        }
    }

    /// What the kernel sent since the last write counts too: a paced
    /// socket that drained below its low-water mark raises no event.
    fn report_all_sent(&mut self, handler: &mut H) {
        for (id, conn) in self.conns.iter_mut() {
            if conn.reports_sent && !conn.connecting {
                report_sent(handler, &mut self.ctx, id, conn);
            }
        }
    }

    fn close_idle(&mut self, handler: &mut H, now: Instant) {
        // Connections quiet for a tick give their empty read buffers back.
        let quiet = self.limits.tick;
        for (_, c) in self.conns.iter_mut() {
            if now.saturating_duration_since(c.last_active) >= quiet {
                c.input.release_if_empty();
            }
        }
        let timeout = self.limits.idle_timeout;
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| now.duration_since(c.last_active) > timeout)
            .map(|(id, _)| id)
            .collect();
        for id in idle {
            if let Some(conn) = self.conns.get_mut(id) {
                if !conn.connecting && !handler.idle(id, &mut conn.session, &mut conn.out) {
                    conn.last_active = now;
                    continue;
                }
                debug!("connection {id}: idle timeout");
                let _ = conn.out.flush(&mut conn.stream);
                conn.stream.finish();
                self.drop_conn(handler, id);
            }
        }
    }

    fn drop_conn(&mut self, handler: &mut H, id: ConnId) {
        if let Some(mut conn) = self.conns.try_remove(id) {
            // Ids are reused: a new connection must not inherit a turn.
            if conn.up_queued {
                self.upload.forget(id);
            }
            if conn.down_queued {
                self.download.forget(id);
            }
            let _ = self.poll.registry().deregister(conn.stream.source());
            handler.close(&mut self.ctx, id, conn.session);
        }
    }

    /// Closes every connection, each once what was queued for it left
    /// and the other side closed too, or after [`LINGER`].
    fn shutdown(&mut self, handler: &mut H) {
        let deadline = Instant::now() + LINGER;
        // Sets: a tracker may close tens of thousands at once.
        let mut open: std::collections::HashSet<ConnId> =
            self.conns.iter().map(|(id, _)| id).collect();
        let mut half_closed = std::collections::HashSet::new();
        let mut events = Events::with_capacity(1024);
        let mut due: Vec<ConnId> = open.iter().copied().collect();
        loop {
            for id in due {
                if self.linger(handler, id, &mut half_closed) {
                    open.remove(&id);
                }
            }
            let now = Instant::now();
            if open.is_empty() || now >= deadline {
                break;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(deadline - now))
                && e.kind() != io::ErrorKind::Interrupted
            {
                break;
            }
            due = events
                .iter()
                .map(|e| e.token().0)
                .filter(|&t| t < FIRST_SPECIAL && self.conns.contains(t))
                .collect();
        }
        for id in open {
            self.drop_conn(handler, id);
        }
        self.ctx.commands.clear();
    }

    /// One step of closing `id` gracefully: writes what is queued, then a
    /// FIN, and drops what comes in. True once it is closed.
    fn linger(
        &mut self,
        handler: &mut H,
        id: ConnId,
        half_closed: &mut std::collections::HashSet<ConnId>,
    ) -> bool {
        let Some(conn) = self.conns.get_mut(id) else {
            return true;
        };
        let written = conn.out.flush(&mut conn.stream);
        if matches!(written, Ok(true)) && conn.stream.finish() && half_closed.insert(id) {
            conn.stream.half_close();
        }
        let ended = written.is_err() || conn.stream.drain_input();
        if ended {
            self.drop_conn(handler, id);
        }
        ended
    }
}

/// How long a stopping process waits for each connection to close
/// gracefully: what it queued goes out, then a FIN, and what comes in is
/// read and dropped until the other side closes too. Closing a socket
/// with input unread (or getting input after closing it) sends a reset,
/// and a reset makes the other side drop what it had not read yet: a
/// seed stopped just after sending a piece's last blocks lost them.
const LINGER: Duration = Duration::from_secs(2);

/// Connections the kernel may queue before we accept them. mio and std
/// listen with 128, which makes a burst of clients (thousands of peers
/// reconnecting to a restarted tracker) lose SYNs and retry a second later.
const LISTEN_BACKLOG: libc::c_int = 4096;

fn widen_backlog(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on a socket we own; calling it again on a
    // listening socket only changes the backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        warn!(
            "cannot widen the listen backlog: {}",
            io::Error::last_os_error()
        );
    }
}

/// Whether a short read of a TCP socket means it is drained, for
/// edge-triggered readiness (Linux epoll; nginx relies on it too), unless
/// the event said the peer closed its side: a FIN queued before the read
/// raises no new edge.
const SHORT_READ_DRAINS: bool = cfg!(target_os = "linux");

/// Where [`read_and_handle`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// The socket has nothing more for now; readable readiness will tell.
    WouldBlock,
    /// The handler stopped it: the connection closes, or its output backs
    /// up (reading resumes as it drains).
    Stopped,
    /// The budget is spent; the socket may hold more.
    Budget,
}

/// Reads until the socket would block or `budget` bytes are read (the
/// count is taken off it), handing complete input to the handler as it
/// arrives. Stops early when output backs up.
fn read_and_handle<H: Handler>(
    conn: &mut Conn<H::Session>,
    handler: &mut H,
    ctx: &mut Ctx<H::Session>,
    id: ConnId,
    limits: &Limits,
    mut budget: usize,
    short_read_drains: bool,
) -> io::Result<(ReadEnd, usize)> {
    let start = budget;
    // Input left unprocessed when backpressure paused us comes first: the
    // socket may have nothing new to say.
    if !conn.input.data().is_empty() && !process(conn, handler, ctx, id, limits) {
        return Ok((ReadEnd::Stopped, 0));
    }
    loop {
        if budget == 0 {
            return Ok((ReadEnd::Budget, start));
        }
        // TLS plaintext is copied in by rustls, in user space, where the
        // alignment does not matter.
        let aligned = !matches!(conn.stream, Stream::Tls(_));
        let Some(spare) = conn.input.spare(limits.max_read_buffer, aligned) else {
            // The handler's decoder refuses frames beyond the limit, so a
            // full buffer means it is not consuming: a protocol bug.
            return Err(io::Error::other("read buffer full"));
        };
        let room = spare.len();
        let asked = room.min(budget);
        let spare = &mut spare[..asked];
        let n = match conn.stream.read(spare) {
            // The end of input; what is queued for the peer still goes
            // (Reactor::read_failed).
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok((ReadEnd::WouldBlock, start - budget));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        budget -= n;
        conn.input.filled(n);
        if n == room {
            conn.input.busy(limits.read_buffer);
        }
        conn.last_active = Instant::now();
        if !process(conn, handler, ctx, id, limits) {
            return Ok((ReadEnd::Stopped, start - budget));
        }
        // A short read drained a Linux TCP socket: epoll raises a new edge
        // for any byte (or FIN) that comes after it, so the read that would
        // only say WouldBlock is spared: with one request per read (a
        // session that waits for each answer) it is one system call in three.
        if short_read_drains && n < asked && matches!(conn.stream, Stream::Tcp(_)) {
            return Ok((ReadEnd::WouldBlock, start - budget));
        }
    }
}

/// Hands buffered input to the handler until it stops consuming. Returns
/// false when reading must stop: the connection is closing or its output
/// backs up.
fn process<H: Handler>(
    conn: &mut Conn<H::Session>,
    handler: &mut H,
    ctx: &mut Ctx<H::Session>,
    id: ConnId,
    limits: &Limits,
) -> bool {
    if let Some(peer) = conn.stream.take_established()
        && !handler.tls_established(id, &mut conn.session, &peer)
    {
        conn.closing = true;
        return false;
    }
    loop {
        let flow = handler.data(ctx, id, &mut conn.session, conn.input.data(), &mut conn.out);
        conn.input.consume(flow.used);
        if flow.close {
            conn.closing = true;
            return false;
        }
        if conn.out.len() > limits.write_high_water {
            conn.paused = true;
            return false;
        }
        if flow.used == 0 || conn.input.data().is_empty() {
            return true;
        }
    }
}

#[cfg(test)]
mod tls_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;

    /// Queues `later` with `send_later` on every accepted connection;
    /// answers `go` with `now`, and stops the loop on `stop`.
    struct Later;

    impl Handler for Later {
        type Session = ();

        fn open(
            &mut self,
            ctx: &mut Ctx<()>,
            id: ConnId,
            _listener: usize,
            _peer: Option<SocketAddr>,
            _out: &mut OutQueue,
        ) -> Option<()> {
            ctx.send_later(id, b"later".to_vec());
            Some(())
        }

        fn data(
            &mut self,
            ctx: &mut Ctx<()>,
            id: ConnId,
            _session: &mut (),
            input: &[u8],
            _out: &mut OutQueue,
        ) -> Flow {
            if input.starts_with(b"go") {
                ctx.send(id, b"now".to_vec());
            }
            if input.starts_with(b"stop") {
                ctx.stop();
            }
            Flow {
                used: input.len(),
                close: false,
            }
        }

        fn close(&mut self, _ctx: &mut Ctx<()>, _id: ConnId, _session: ()) {}
    }

    fn read_exactly(s: &mut StdStream, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        s.read_exact(&mut got).unwrap();
        got
    }

    /// Sends `SIZE` bytes to each of the first `senders` connections and
    /// closes them; stops the loop once `expect` bytes came in on all
    /// connections together (with `expect` 0, at the first byte).
    struct Bulk {
        expect: usize,
        got: usize,
        /// Connections still to send `SIZE` bytes to, when sending.
        senders: usize,
    }

    const SIZE: usize = 2_000_000;

    impl Handler for Bulk {
        type Session = ();

        fn open(
            &mut self,
            ctx: &mut Ctx<()>,
            id: ConnId,
            _listener: usize,
            _peer: Option<SocketAddr>,
            _out: &mut OutQueue,
        ) -> Option<()> {
            if self.senders > 0 {
                self.senders -= 1;
                ctx.send(id, vec![7; SIZE]);
                ctx.close(id);
            }
            Some(())
        }

        fn data(
            &mut self,
            ctx: &mut Ctx<()>,
            _id: ConnId,
            _session: &mut (),
            input: &[u8],
            _out: &mut OutQueue,
        ) -> Flow {
            self.got += input.len();
            // Sending (expect 0), any input means stop.
            if self.got >= self.expect {
                ctx.stop();
            }
            Flow {
                used: input.len(),
                close: false,
            }
        }

        fn rate_limited(&self, _session: &()) -> bool {
            true
        }

        fn close(&mut self, _ctx: &mut Ctx<()>, _id: ConnId, _session: ()) {}
    }

    fn bulk_reactor(upload: u64, download: u64) -> (Reactor<Bulk>, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut reactor = Reactor::<Bulk>::new(Limits {
            max_connections: 16,
            idle_timeout: Duration::from_secs(60),
            read_buffer: 64 * 1024,
            max_read_buffer: 128 * 1024,
            write_high_water: 8 << 20,
            tick: Duration::from_millis(250),
            send_later: Duration::from_millis(25),
        })
        .unwrap();
        reactor.listen(Listener::Tcp(listener)).unwrap();
        reactor.set_rates(upload, download);
        (reactor, addr)
    }

    /// Sends `SIZE` bytes to the first connection and records what the
    /// loop reports as gone from it; stops once all of it has, or at once
    /// with `stop_at_once`.
    struct Paced {
        reports: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
        stop_at_once: bool,
    }

    impl Handler for Paced {
        type Session = ();

        fn open(
            &mut self,
            ctx: &mut Ctx<()>,
            id: ConnId,
            _listener: usize,
            _peer: Option<SocketAddr>,
            _out: &mut OutQueue,
        ) -> Option<()> {
            ctx.send(id, vec![7; SIZE]);
            if self.stop_at_once {
                ctx.stop();
            }
            Some(())
        }

        fn data(
            &mut self,
            _ctx: &mut Ctx<()>,
            _id: ConnId,
            _session: &mut (),
            input: &[u8],
            _out: &mut OutQueue,
        ) -> Flow {
            Flow {
                used: input.len(),
                close: false,
            }
        }

        fn reports_sent(&self, _session: &()) -> bool {
            true
        }

        fn sent(&mut self, ctx: &mut Ctx<()>, _id: ConnId, _session: &mut (), left: u64) {
            if let Ok(mut r) = self.reports.lock() {
                r.push(left);
            }
            if left >= SIZE as u64 {
                ctx.stop();
            }
        }

        fn close(&mut self, _ctx: &mut Ctx<()>, _id: ConnId, _session: ()) {}
    }

    fn paced_reactor() -> (Reactor<Paced>, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut reactor = Reactor::<Paced>::new(Limits {
            max_connections: 4,
            idle_timeout: Duration::from_secs(60),
            read_buffer: 64 * 1024,
            max_read_buffer: 128 * 1024,
            write_high_water: 8 << 20,
            tick: Duration::from_millis(50),
            send_later: Duration::from_millis(25),
        })
        .unwrap();
        reactor.listen(Listener::Tcp(listener)).unwrap();
        (reactor, addr)
    }

    /// A stopping reactor sends what it queued and then an end, not a
    /// reset, though input it never read waits in the socket (a reset
    /// would make the reader drop what it had not read yet).
    #[test]
    fn a_stopping_reactor_delivers_what_it_queued_then_closes() {
        let (mut reactor, addr) = paced_reactor();
        let mut paced = Paced {
            reports: Default::default(),
            stop_at_once: true,
        };
        let server = std::thread::spawn(move || reactor.run(&mut paced));
        let mut s = StdStream::connect(addr).unwrap();
        s.write_all(&[1; 1000]).unwrap();
        // The reactor stops while most of SIZE waits for this reader.
        std::thread::sleep(Duration::from_millis(200));
        s.write_all(&[1; 1000]).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("an end, not a reset");
        assert_eq!(got.len(), SIZE);
        drop(s);
        server.join().unwrap().unwrap();
    }

    /// A paced connection reports only what the kernel sent: while the
    /// reader sleeps, little of 2 MB is gone; once it reads, all of it.
    #[test]
    fn a_paced_connection_reports_what_left_as_the_socket_drains() {
        let (mut reactor, addr) = paced_reactor();
        let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut paced = Paced {
            reports: reports.clone(),
            stop_at_once: false,
        };
        let server = std::thread::spawn(move || reactor.run(&mut paced));
        let mut s = StdStream::connect(addr).unwrap();
        // Small buffers on the reader's side keep TCP from taking it all.
        std::thread::sleep(Duration::from_millis(300));
        let before = reports.lock().unwrap().last().copied().unwrap_or(0);
        let mut got = vec![0; SIZE];
        s.read_exact(&mut got).unwrap();
        server.join().unwrap().unwrap();
        assert!(before < SIZE as u64 / 2, "{before} gone before any read");
        let all = reports.lock().unwrap().clone();
        assert_eq!(all.last().copied(), Some(SIZE as u64));
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    }

    /// Two connections share the upload limit: neither finishes before the
    /// limit allows, and they take turns, so they finish close together.
    #[test]
    fn limited_connections_share_the_upload_rate_in_turn() {
        let rate = 8_000_000;
        let (mut reactor, addr) = bulk_reactor(rate, 0);
        let mut bulk = Bulk {
            expect: 0,
            got: 0,
            senders: 2,
        };
        let server = std::thread::spawn(move || reactor.run(&mut bulk));
        let t0 = Instant::now();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let mut s = StdStream::connect(addr).unwrap();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).unwrap();
                    (got.len(), t0.elapsed())
                })
            })
            .collect();
        let done: Vec<(usize, Duration)> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        let total = 2 * SIZE;
        let least = Duration::from_secs_f64(total as f64 / rate as f64 * 0.9);
        for (n, at) in &done {
            assert_eq!(*n, SIZE);
            // Each had its share of the rate all along: the first done
            // was not served alone.
            assert!(*at >= least * 9 / 10, "{done:?}: before {least:?}");
        }
        let mut stop = StdStream::connect(addr).unwrap();
        stop.write_all(b"x").unwrap();
        server.join().unwrap().unwrap();
    }

    /// The download limit: input is read no faster than it allows, the
    /// senders held back by TCP.
    #[test]
    fn limited_connections_are_read_at_the_download_rate() {
        let rate = 8_000_000;
        let (mut reactor, addr) = bulk_reactor(0, rate);
        let total = 2 * SIZE;
        let mut bulk = Bulk {
            expect: total,
            got: 0,
            senders: 0,
        };
        let t0 = Instant::now();
        let server = std::thread::spawn(move || {
            reactor.run(&mut bulk).unwrap();
            t0.elapsed()
        });
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let mut s = StdStream::connect(addr).unwrap();
                std::thread::spawn(move || {
                    let _ = s.write_all(&vec![1; SIZE]);
                    // Keep the connection until the server has read it all.
                    let _ = s.read(&mut [0; 1]);
                })
            })
            .collect();
        let took = server.join().unwrap();
        let least = Duration::from_secs_f64(total as f64 / rate as f64 * 0.9);
        assert!(took >= least, "{total} bytes read in {took:?}");
        drop(writers);
    }

    /// A reactor running [`Later`] on a loopback port, in a thread of its
    /// own; "stop" from any client ends it.
    fn later_reactor(
        send_later: Duration,
    ) -> (SocketAddr, std::thread::JoinHandle<io::Result<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut reactor = Reactor::<Later>::new(Limits {
            max_connections: 16,
            idle_timeout: Duration::from_secs(60),
            read_buffer: 4096,
            max_read_buffer: 8192,
            write_high_water: 1 << 20,
            tick: Duration::from_millis(50),
            send_later,
        })
        .unwrap();
        reactor.listen(Listener::Tcp(listener)).unwrap();
        (addr, std::thread::spawn(move || reactor.run(&mut Later)))
    }

    #[test]
    fn output_sent_later_waits_for_company_or_its_delay() {
        let delay = Duration::from_secs(2);
        let (addr, thread) = later_reactor(delay);
        let timeout = Some(Duration::from_secs(30));

        // Alone, it goes once the delay has passed (never before).
        let t0 = Instant::now();
        let mut alone = StdStream::connect(addr).unwrap();
        alone.set_read_timeout(timeout).unwrap();
        // Other output takes it along, in order, long before the delay.
        let mut company = StdStream::connect(addr).unwrap();
        company.set_read_timeout(timeout).unwrap();
        company.write_all(b"go").unwrap();
        assert_eq!(read_exactly(&mut company, 8), b"laternow");
        assert!(t0.elapsed() < delay, "taken along by `now`");
        assert_eq!(read_exactly(&mut alone, 5), b"later");
        assert!(t0.elapsed() >= delay, "sent after its delay");

        company.write_all(b"stop").unwrap();
        thread.join().unwrap().unwrap();
    }

    /// A client that half-closes after its request still gets the answer,
    /// although the handler queued it as a command (after the input was
    /// consumed), and then sees the connection end.
    #[test]
    fn a_half_closed_connection_gets_its_answer_then_closes() {
        let (addr, thread) = later_reactor(Duration::from_secs(30));
        let timeout = Some(Duration::from_secs(10));

        for _ in 0..20 {
            let mut s = StdStream::connect(addr).unwrap();
            s.set_read_timeout(timeout).unwrap();
            s.write_all(b"go").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"laternow");
        }

        let mut s = StdStream::connect(addr).unwrap();
        s.write_all(b"stop").unwrap();
        thread.join().unwrap().unwrap();
    }
}
