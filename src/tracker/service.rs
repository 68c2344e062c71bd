//! Glue between the reactor and the tracker core: decode frames from a
//! session's input, answer each, and turn decode errors into error frames
//! (closing the session when the stream cannot be trusted any more).

use super::core::{Next, Tracker};
use crate::reactor::{ConnId, Ctx, Flow, Handler, OutQueue};
use crate::wire::tracker::{ErrorCode, Request, Response};
use log::debug;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Output one call of `data` may produce. The reactor calls again with the
/// rest of the input while the queue is below its high-water mark, and
/// stops reading past it: a flood of pipelined requests cannot balloon
/// memory. (The batch counts this call's output only: the queue may still
/// hold unflushed bytes, and counting those would return `used` = 0 with
/// whole requests left, which the reactor takes for "need more input".)
const OUTPUT_BATCH: usize = 1024 * 1024;

impl Handler for Tracker {
    type Session = ();

    fn open(
        &mut self,
        _ctx: &mut Ctx<()>,
        id: ConnId,
        _listener: usize,
        peer: Option<SocketAddr>,
        _out: &mut OutQueue,
    ) -> Option<()> {
        let ip = peer.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip());
        self.connect(id, ip);
        Some(())
    }

    fn data(
        &mut self,
        _ctx: &mut Ctx<()>,
        id: ConnId,
        _session: &mut (),
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow {
        let mut used = 0;
        let mut close = false;
        out.push_with(|buf| {
            let start = buf.len();
            while !close && buf.len() - start < OUTPUT_BATCH {
                match Request::decode(&input[used..]) {
                    Ok(None) => break,
                    Ok(Some((req, n))) => {
                        used += n;
                        close = self.handle(id, req, buf) == Next::Close;
                    }
                    Err(e) => {
                        debug!("session {id}: {e}");
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

    fn refuse(&mut self, out: &mut OutQueue) {
        out.push_with(|buf| {
            Response::Error {
                code: ErrorCode::LIMIT_REACHED,
                message: "the tracker has reached its connection limit; try again later".into(),
            }
            .encode(buf)
        });
    }

    fn idle(&mut self, _id: ConnId, _session: &mut (), out: &mut OutQueue) -> bool {
        out.push_with(|buf| {
            Response::Error {
                code: ErrorCode::IDLE_TIMEOUT,
                message: "no request within the idle timeout; closing".into(),
            }
            .encode(buf)
        });
        true
    }

    fn close(&mut self, _ctx: &mut Ctx<()>, id: ConnId, _session: ()) {
        self.disconnect(id);
    }
}
