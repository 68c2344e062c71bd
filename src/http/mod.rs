//! HTTP/1.1 for the daemons' monitoring and API listener (`--http`),
//! sans-IO: [`request::parse`] turns the bytes a connection has sent into
//! one request (or "need more", or an error that maps to a status), and
//! [`response::Response`] builds the bytes of the answer. One request per
//! connection: every response says `Connection: close`.
//!
//! [`prometheus`] renders metrics in the Prometheus text format and
//! [`auth`] checks bearer tokens. What a path means belongs to each
//! daemon's router (`peer::http`, `tracker::http_api`).

pub mod auth;
pub mod prometheus;
pub mod request;
pub mod response;

pub use request::{HttpError, MAX_BODY, MAX_HEAD, Method, Request, parse};
pub use response::Response;

/// Most bytes read and dropped after a refused request before the
/// connection is closed anyway.
pub const MAX_DRAIN: usize = 256 * 1024;

/// One HTTP connection: waiting for its request, then answered. After a
/// refusal (a head too large, a body over the limit) the client may still
/// be sending; closing with its bytes unread would reset the connection
/// and lose the answer, so what follows is read and dropped (up to
/// [`MAX_DRAIN`]) until the client, told `Connection: close`, hangs up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// Bytes dropped since the answer; `None` before it.
    drained: Option<usize>,
}

/// What to do after [`Exchange::input`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Input bytes consumed.
    pub used: usize,
    /// Close once `reply` is flushed.
    pub close: bool,
    /// The answer's bytes, once there is one.
    pub reply: Option<Vec<u8>>,
}

impl Exchange {
    /// Takes the bytes received so far (all of them not yet consumed);
    /// `answer` is called once, with the whole request. It may return
    /// `None` when the answer comes later: the caller then sends it (and
    /// closes) itself, while what the client still sends is drained.
    pub fn input(
        &mut self,
        input: &[u8],
        answer: impl FnOnce(&Request) -> Option<Response>,
    ) -> Step {
        if let Some(drained) = &mut self.drained {
            *drained = drained.saturating_add(input.len());
            return Step {
                used: input.len(),
                close: *drained > MAX_DRAIN,
                reply: None,
            };
        }
        let (response, head_only, rest, refused) = match parse(input) {
            Ok(None) => {
                return Step {
                    used: 0,
                    close: false,
                    reply: None,
                };
            }
            Ok(Some((req, used))) => {
                let head_only = req.method == Method::Head;
                (answer(&req), head_only, input.len() - used, false)
            }
            Err(e) => (Some(Response::text(e.status, e.message)), false, 0, true),
        };
        self.drained = Some(rest);
        let Some(response) = response else {
            return Step {
                used: input.len(),
                close: false,
                reply: None,
            };
        };
        Step {
            used: input.len(),
            // With nothing left unread, close at once; after a refusal
            // (or bytes past the request) drain first.
            close: !refused && rest == 0,
            reply: Some(response.encode(head_only)),
        }
    }
}

/// The answer to a path no route knows.
pub fn not_found() -> Response {
    Response::error(404, "not_found", "no such path; see spec/http.md")
}

/// The answer to a known path asked with another method than `allow`.
pub fn method_not_allowed(allow: &'static str) -> Response {
    Response::error(405, "method_not_allowed", &format!("use {allow}")).with_header("Allow", allow)
}

/// The last path segment after `prefix`, parsed as an info hash: `None`
/// when the path is not under `prefix`, `Some(Err)` for a bad hash.
pub fn hash_under(path: &str, prefix: &str) -> Option<Result<[u8; 20], Response>> {
    let rest = path.strip_prefix(prefix)?;
    Some(crate::meta::info::from_hex(rest).ok_or_else(|| {
        Response::error(
            400,
            "bad_request",
            &format!("expected {prefix} and 40 hex digits"),
        )
    }))
}

/// The value of `name` in a query string (`a=1&b=2`), not decoded.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `--http PORT` means `127.0.0.1:PORT`; `--http ADDR:PORT` is taken as
/// given.
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|_| format!("{text:?}: expected ADDR:PORT or PORT"))
}

/// The value of a `--http` setting: `off` (or empty), a port, or an
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<std::net::SocketAddr>);

impl std::str::FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Listen, String> {
        match s.trim() {
            "" | "off" => Ok(Listen(None)),
            s => parse_listen(s).map(|a| Listen(Some(a))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_answers_once_then_drains() {
        let mut x = Exchange::default();
        let req = b"GET /a HTTP/1.1\r\n\r\n";
        assert_eq!(x.input(&req[..5], |_| unreachable!()).used, 0);
        let step = x.input(req, |r| Some(Response::text(200, &r.path)));
        assert_eq!((step.used, step.close), (req.len(), true));
        assert!(step.reply.unwrap().ends_with(b"\r\n\r\n/a\n"));

        let mut x = Exchange::default();
        let step = x.input(
            b"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n",
            |_| unreachable!(),
        );
        assert!(!step.close);
        assert!(step.reply.unwrap().starts_with(b"HTTP/1.1 413 "));
        let more = vec![0; MAX_DRAIN / 2];
        let step = x.input(&more, |_| unreachable!());
        assert_eq!(
            (step.used, step.close, step.reply),
            (more.len(), false, None)
        );
        let step = x.input(&more, |_| unreachable!());
        assert!(!step.close);
        assert!(x.input(b"x", |_| unreachable!()).close);
    }

    #[test]
    fn a_bare_port_is_loopback() {
        assert_eq!(parse_listen("9100").unwrap().to_string(), "127.0.0.1:9100");
        assert_eq!(
            parse_listen("0.0.0.0:80").unwrap().to_string(),
            "0.0.0.0:80"
        );
        assert_eq!(parse_listen("[::1]:8").unwrap().to_string(), "[::1]:8");
        assert!(parse_listen("host").is_err());
        assert!(parse_listen("70000").is_err());
        assert_eq!("off".parse::<Listen>(), Ok(Listen(None)));
        assert_eq!(
            " 80 ".parse::<Listen>().unwrap().0.unwrap().to_string(),
            "127.0.0.1:80"
        );
    }
}
