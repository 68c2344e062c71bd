//! Glue between the reactor and the tracker core: decode frames from a
//! session's input, answer each, and turn decode errors into error frames
//! (closing the session when the stream cannot be trusted any more).

use super::core::{BtAnnounce, Next, Tracker};
use crate::reactor::{ConnId, Ctx, Flow, Handler, OutQueue};
use crate::wire::bt_http::{self, HttpError};
use crate::wire::bt_udp::{self, ErrorKind};
use crate::wire::tracker::{ErrorCode, Request, Response};
use log::{debug, info};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

/// What a tracker connection speaks, by the listener that accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// The STA tracker protocol (spec/tracker.md).
    Sta,
    /// One BitTorrent HTTP request, one reply, then close.
    Http,
    /// One request to the monitoring API (`--http`), one reply, then close.
    Api(crate::http::Exchange),
}

/// Output one call of `data` may produce. The reactor calls again with the
/// rest of the input while the queue is below its high-water mark, and
/// stops reading past it: a flood of pipelined requests cannot balloon
/// memory. (The batch counts this call's output only: the queue may still
/// hold unflushed bytes, and counting those would return `used` = 0 with
/// whole requests left, which the reactor takes for "need more input".)
const OUTPUT_BATCH: usize = 1024 * 1024;

/// The longest wait between sweeps of expired BitTorrent peers.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Handler for Tracker {
    type Session = Proto;

    fn reload(&mut self, ctx: &mut Ctx<Proto>) {
        if let Some(f) = self.on_reload.as_mut() {
            f(ctx, &mut self.guard);
        }
        // A ban applies to sessions already open too: they are closed
        // (without a frame: the reactor closes them from outside `data`).
        let guard = &self.guard;
        for id in self.sessions_from(|ip| guard.is_banned(ip)) {
            info!("session {id}: its address is now banned; closing");
            ctx.close(id);
        }
    }

    fn open(
        &mut self,
        _ctx: &mut Ctx<Proto>,
        id: ConnId,
        listener: usize,
        peer: Option<SocketAddr>,
        out: &mut OutQueue,
    ) -> Option<Proto> {
        let ip = peer.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip());
        if let Some(api) = self.api.as_ref().filter(|a| a.listener == listener) {
            return Some(Proto::Api(crate::http::Exchange::on_loopback(api.loopback)));
        }
        if self.http_listener == Some(listener) {
            self.http_peers.insert(id, ip);
            return Some(Proto::Http);
        }
        if let Err(r) = self.guard.open_session(ip) {
            info!("refused a session from {ip}: {}", r.message);
            self.stats.error("sta", r.code.0);
            out.push_with(|buf| {
                Response::Error {
                    code: r.code,
                    message: r.message,
                }
                .encode(buf)
            });
            return None;
        }
        self.connect(id, ip);
        Some(Proto::Sta)
    }

    fn data(
        &mut self,
        ctx: &mut Ctx<Proto>,
        id: ConnId,
        session: &mut Proto,
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow {
        match session {
            Proto::Http => {
                let flow = self.http(id, input, out);
                self.send_dials(ctx);
                return flow;
            }
            Proto::Api(exchange) => return self.api_http(exchange, input, out),
            Proto::Sta => {}
        }
        let mut used = 0;
        let mut close = false;
        let remote = self.remote(id);
        // One clock read per request: each is timed from the end of the
        // one before (or from the start of this batch).
        let mut start_of_request = Instant::now();
        out.push_with(|buf| {
            let start = buf.len();
            while !close && buf.len() - start < OUTPUT_BATCH {
                match Request::decode(&input[used..]) {
                    Ok(None) => break,
                    Ok(Some((req, n))) => {
                        used += n;
                        let guarded = match (&req, remote) {
                            (Request::KeepAlive, _) | (_, None) => Ok(()),
                            (_, Some(ip)) => self.guard.request(ip, start_of_request),
                        };
                        close = match guarded {
                            Ok(()) => self.handle(id, req, buf) == Next::Close,
                            Err(r) => {
                                self.stats.sta_request(Some(&req));
                                self.stats.error("sta", r.code.0);
                                let close = r.code == ErrorCode::BANNED;
                                Response::Error {
                                    code: r.code,
                                    message: r.message,
                                }
                                .encode(buf);
                                close
                            }
                        };
                        let done = Instant::now();
                        let took = done.duration_since(start_of_request);
                        self.stats.observe("sta", took.as_secs_f64());
                        start_of_request = done;
                    }
                    Err(e) => {
                        debug!("session {id}: {e}");
                        if used == 0 && crate::tls::looks_like_tls(input) {
                            log::warn!(
                                "session {id}: TLS on a plain-text port (a peer with --tls-cert?): give this tracker --tls-cert, --tls-key and --tls-ca too"
                            );
                        }
                        self.stats.sta_request(None);
                        self.stats.error("sta", e.code.0);
                        e.to_response().encode(buf);
                        match e.used {
                            Some(n) => used += n,
                            None => close = true,
                        }
                    }
                }
            }
        });
        Flow { used, close }
    }

    fn tls_established(
        &mut self,
        id: ConnId,
        session: &mut Proto,
        _peer: &crate::reactor::TlsPeer,
    ) -> bool {
        // The handshake verified the client's certificate against
        // --tls-ca (a client without one is refused before this).
        if *session == Proto::Sta {
            self.authenticate(id);
        }
        true
    }

    fn refuse(&mut self, out: &mut OutQueue) {
        out.push_with(|buf| {
            Response::Error {
                code: ErrorCode::LIMIT_REACHED,
                message: "the tracker has reached its connection limit; try again later".into(),
            }
            .encode(buf)
        });
    }

    fn idle(&mut self, _id: ConnId, session: &mut Proto, out: &mut OutQueue) -> bool {
        if *session != Proto::Sta {
            return true;
        }
        out.push_with(|buf| {
            Response::Error {
                code: ErrorCode::IDLE_TIMEOUT,
                message: "no request within the idle timeout; closing".into(),
            }
            .encode(buf)
        });
        true
    }

    fn close(&mut self, _ctx: &mut Ctx<Proto>, id: ConnId, session: Proto) {
        match session {
            Proto::Sta => {
                if let Some(ip) = self.remote(id) {
                    self.guard.session_closed(ip);
                }
                self.disconnect(id)
            }
            Proto::Http => {
                self.http_peers.remove(&id);
            }
            Proto::Api(_) => {}
        }
    }

    fn tick(&mut self, _ctx: &mut Ctx<Proto>, now: Instant) {
        self.guard.forget_idle(now);
        // A sweep walks every BitTorrent peer; a tenth of a peer's
        // lifetime late (at most SWEEP_EVERY) costs nothing.
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        let lifetime = 2 * u64::from(self.config().announce_interval_secs);
        let every = std::time::Duration::from_millis(lifetime * 100).min(SWEEP_EVERY);
        self.next_sweep = Some(now + every);
        let gone = self.sweep(now);
        if gone > 0 {
            debug!("{gone} BitTorrent peers expired");
        }
    }

    fn datagram(
        &mut self,
        ctx: &mut Ctx<Proto>,
        _listener: usize,
        from: SocketAddr,
        bytes: &[u8],
        reply: &mut Vec<u8>,
    ) {
        let now = Instant::now();
        self.udp(from, bytes, now, reply);
        self.send_dials(ctx);
        self.stats.observe("udp", now.elapsed().as_secs_f64());
    }
}

impl Tracker {
    /// Writes the Dials the last BitTorrent announce asked for (sessions
    /// that closed since are skipped by the reactor).
    fn send_dials(&mut self, ctx: &mut Ctx<Proto>) {
        for d in self.bt_dials.drain(..) {
            debug!(
                "session {}: dial {} for {}",
                d.conn,
                d.addr,
                crate::meta::info::to_hex(&d.info_hash)
            );
            ctx.send(d.conn, d.frame());
        }
    }

    /// Answers one BEP 15 datagram from `from` into `reply` (left empty
    /// when the datagram deserves no answer).
    pub fn udp(&mut self, from: SocketAddr, bytes: &[u8], now: Instant, reply: &mut Vec<u8>) {
        let req = match bt_udp::Request::parse(bytes) {
            Ok(req) => req,
            Err(e) => {
                debug!("udp {from}: {e}");
                self.stats.request("udp", "malformed");
                self.stats.error("udp", "malformed");
                if let Some(transaction_id) = e.transaction_id {
                    let message = match e.kind {
                        ErrorKind::UnknownAction(_) => e.to_string(),
                        _ => format!("malformed request: {e}"),
                    };
                    bt_udp::Response::Error {
                        transaction_id,
                        message,
                    }
                    .encode(reply);
                }
                return;
            }
        };
        let kind = match &req {
            bt_udp::Request::Connect { .. } => "connect",
            bt_udp::Request::Announce(_) => "announce",
            bt_udp::Request::Scrape { .. } => "scrape",
        };
        self.stats.request("udp", kind);
        let refuse =
            |tracker: &mut Tracker, reply: &mut Vec<u8>, transaction_id, message: String| {
                tracker.stats.error("udp", "failure");
                bt_udp::Response::Error {
                    transaction_id,
                    message,
                }
                .encode(reply)
            };
        let transaction_id = match &req {
            bt_udp::Request::Connect { transaction_id } => *transaction_id,
            bt_udp::Request::Announce(a) => a.transaction_id,
            bt_udp::Request::Scrape { transaction_id, .. } => *transaction_id,
        };
        if let Err(r) = self.guard.request(from.ip(), now) {
            return refuse(self, reply, transaction_id, r.message);
        }
        match req {
            bt_udp::Request::Connect { transaction_id } => bt_udp::Response::Connect {
                transaction_id,
                connection_id: self.connection_id(from, now),
            }
            .encode(reply),
            bt_udp::Request::Announce(a) => {
                if !self.connection_id_valid(a.connection_id, from, now) {
                    return refuse(self, reply, a.transaction_id, "bad connection id".into());
                }
                let announce = BtAnnounce {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    addr: SocketAddr::new(from.ip().to_canonical(), a.port),
                    left: a.left,
                    event: a.event,
                    numwant: u32::try_from(a.num_want).ok(),
                    same_family: true,
                };
                let mut peers = std::mem::take(&mut self.bt_peers);
                let mut dials = std::mem::take(&mut self.bt_dials);
                match self.bt_announce(&announce, now, &mut peers, &mut dials) {
                    Ok(r) => {
                        bt_udp::encode_announce_header(
                            reply,
                            a.transaction_id,
                            r.interval,
                            r.leechers,
                            r.seeders,
                        );
                        for p in &peers {
                            bt_udp::push_compact(reply, p);
                        }
                    }
                    Err(message) => refuse(self, reply, a.transaction_id, message),
                }
                self.bt_peers = peers;
                self.bt_dials = dials;
            }
            bt_udp::Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                if !self.connection_id_valid(connection_id, from, now) {
                    return refuse(self, reply, transaction_id, "bad connection id".into());
                }
                let stats = info_hashes.iter().map(|h| self.scrape(h)).collect();
                bt_udp::Response::Scrape {
                    transaction_id,
                    stats,
                }
                .encode(reply);
            }
        }
    }

    /// One HTTP request head: answer it and close.
    fn http(&mut self, id: ConnId, input: &[u8], out: &mut OutQueue) -> Flow {
        let started = Instant::now();
        let ip = self
            .http_peers
            .get(&id)
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let mut body = Vec::new();
        let (status, reason) = match bt_http::parse_request(input) {
            Ok(None) => {
                return Flow {
                    used: 0,
                    close: false,
                };
            }
            Ok(Some((req, _))) => match self.http_request(ip, req, started, &mut body) {
                Ok(()) => (200, "OK"),
                Err(message) => {
                    self.stats.error("http", "failure");
                    body.clear();
                    bt_http::encode_failure(&mut body, &message);
                    (200, "OK")
                }
            },
            Err(e) => {
                debug!("http session {id}: {e}");
                self.stats.request("http", "malformed");
                bt_http::encode_failure(&mut body, &e.to_string());
                let (status, reason) = http_status(&e);
                self.stats.error("http", status);
                (status, reason)
            }
        };
        out.push_with(|buf| bt_http::encode_reply(buf, status, reason, &body));
        self.stats.observe("http", started.elapsed().as_secs_f64());
        Flow {
            used: input.len(),
            close: true,
        }
    }

    /// Answers a parsed HTTP request into `body`; an error is a failure
    /// reason (sent with status 200, as BitTorrent clients expect).
    pub fn http_request(
        &mut self,
        ip: IpAddr,
        req: bt_http::Request,
        now: Instant,
        body: &mut Vec<u8>,
    ) -> Result<(), String> {
        let kind = match &req {
            bt_http::Request::Announce(_) => "announce",
            bt_http::Request::Scrape(_) => "scrape",
        };
        self.stats.request("http", kind);
        self.guard.request(ip, now).map_err(|r| r.message)?;
        match req {
            bt_http::Request::Announce(a) => {
                let announce = BtAnnounce {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    addr: SocketAddr::new(ip.to_canonical(), a.port),
                    left: a.left,
                    event: a.event,
                    numwant: a.numwant,
                    same_family: false,
                };
                let mut peers = std::mem::take(&mut self.bt_peers);
                let mut dials = std::mem::take(&mut self.bt_dials);
                let result = self.bt_announce(&announce, now, &mut peers, &mut dials);
                if let Ok(r) = &result {
                    bt_http::encode_announce(body, r.interval, r.seeders, r.leechers, &peers);
                }
                self.bt_peers = peers;
                self.bt_dials = dials;
                result.map(|_| ())
            }
            bt_http::Request::Scrape(hashes) => {
                let files: Vec<_> = hashes.iter().map(|h| (*h, self.scrape(h))).collect();
                bt_http::encode_scrape(body, &files);
                Ok(())
            }
        }
    }
}

fn http_status(e: &HttpError) -> (u16, &'static str) {
    let (status, reason) = e.status();
    if status == 414 {
        info!("refused an HTTP request head over the limit");
    }
    (status, reason)
}
