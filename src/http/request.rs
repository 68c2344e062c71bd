//! Incremental parsing of one HTTP/1.1 request: request line, headers and
//! a `Content-Length` body. Nothing is allocated before the bytes it holds
//! have arrived, and the limits are checked before anything is kept: a
//! head over [`MAX_HEAD`] bytes, a body over [`MAX_BODY`], a chunked
//! upload or a malformed line is an [`HttpError`] carrying its status.

use std::fmt;

/// Most bytes of request line plus headers (with the blank line).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most bytes of a request body.
pub const MAX_BODY: usize = 64 * 1024;
/// Most header lines in one request.
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    /// Any other token (PUT, DELETE, ...): answered 405 by the routers.
    Other,
}

/// One parsed request. Header names are kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The target's path, as sent (not percent-decoded).
    pub path: String,
    /// What followed `?` in the target, if anything.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request is refused: the status to answer with, and a short text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub message: &'static str,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for HttpError {}

const fn err<T>(status: u16, message: &'static str) -> Result<T, HttpError> {
    Err(HttpError { status, message })
}

/// Parses the request at the start of `input`: `Ok(None)` until it is
/// whole, then the request and the bytes it used.
pub fn parse(input: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
    let Some(head_len) = find_head_end(input) else {
        if input.len() >= MAX_HEAD {
            return err(431, "request head too large (limit 16 KiB)");
        }
        return Ok(None);
    };
    if head_len > MAX_HEAD {
        return err(431, "request head too large (limit 16 KiB)");
    }
    let head = std::str::from_utf8(&input[..head_len]).map_err(|_| HttpError {
        status: 400,
        message: "request head is not UTF-8",
    })?;
    let mut lines = head.split("\r\n");
    let (method, path, query) = request_line(lines.next().unwrap_or(""))?;
    let mut headers = Vec::new();
    let mut length: Option<usize> = None;
    for line in lines.filter(|l| !l.is_empty()) {
        if headers.len() == MAX_HEADERS {
            return err(431, "too many header lines (limit 64)");
        }
        let Some((name, value)) = line.split_once(':') else {
            return err(400, "malformed header line");
        };
        if name.is_empty() || !name.bytes().all(is_token) {
            return err(400, "malformed header name");
        }
        let name = name.to_ascii_lowercase();
        let value = value.trim_matches([' ', '\t']);
        match name.as_str() {
            "transfer-encoding" => {
                return err(411, "chunked uploads are not accepted; send Content-Length");
            }
            "content-length" => {
                let n = parse_length(value)?;
                if length.is_some_and(|l| l != n) {
                    return err(400, "conflicting Content-Length headers");
                }
                length = Some(n);
            }
            _ => {}
        }
        headers.push((name, value.to_owned()));
    }
    let body_len = length.unwrap_or(0);
    if body_len > MAX_BODY {
        return err(413, "request body too large (limit 64 KiB)");
    }
    if method == Method::Post && length.is_none() {
        return err(411, "a POST needs a Content-Length header");
    }
    let total = head_len + body_len;
    let Some(body) = input.get(head_len..total) else {
        return Ok(None);
    };
    let req = Request {
        method,
        path,
        query,
        headers,
        body: body.to_vec(),
    };
    Ok(Some((req, total)))
}

/// The length of the head with its blank line, once `\r\n\r\n` arrived
/// (only the first [`MAX_HEAD`] + 4 bytes are searched).
fn find_head_end(input: &[u8]) -> Option<usize> {
    let window = &input[..input.len().min(MAX_HEAD + 4)];
    window
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn request_line(line: &str) -> Result<(Method, String, String), HttpError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return err(400, "malformed request line");
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return err(505, "only HTTP/1.0 and HTTP/1.1 are spoken here");
    }
    if method.is_empty() || !method.bytes().all(is_token) {
        return err(400, "malformed method");
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return err(400, "the target must be a path starting with /");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok((method, path.to_owned(), query.to_owned()))
}

fn parse_length(value: &str) -> Result<usize, HttpError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return err(400, "malformed Content-Length");
    }
    // Digits only: the one way to fail is a number too large for a
    // usize, which is over the limit anyway.
    Ok(value.parse().unwrap_or(usize::MAX))
}

/// A byte of an RFC 9110 token (method, header name).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &[u8]) -> (Request, usize) {
        parse(input).unwrap().unwrap()
    }

    fn status(input: &[u8]) -> u16 {
        parse(input).unwrap_err().status
    }

    #[test]
    fn a_get_with_query_and_headers() {
        let input = b"GET /api/v1/status?x=1&y HTTP/1.1\r\nHost: a\r\nX-Thing:  v v \r\n\r\nrest";
        let (req, used) = ok(input);
        assert_eq!(used, input.len() - 4);
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.path, "/api/v1/status");
        assert_eq!(req.query, "x=1&y");
        assert_eq!(req.header("host"), Some("a"));
        assert_eq!(req.header("x-thing"), Some("v v"));
        assert!(req.body.is_empty());
    }

    #[test]
    fn a_post_body_arrives_in_pieces() {
        let input = b"POST /api/v1/share HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        for n in 0..input.len() {
            assert_eq!(parse(&input[..n]), Ok(None), "{n}");
        }
        let (req, used) = ok(input);
        assert_eq!((req.method, used), (Method::Post, input.len()));
        assert_eq!(req.body, b"hello");
    }

    #[test]
    fn limits_and_refusals() {
        assert_eq!(status(b"POST / HTTP/1.1\r\n\r\n"), 411);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(status(b"GET / HTTP/2\r\n\r\n"), 505);
        assert_eq!(status(b"GET  / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET http://x/ HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 400);
        assert_eq!(status(b"GET /\xff HTTP/1.1\r\n\r\n"), 400);
        let many: String = (0..65).map(|i| format!("h{i}: x\r\n")).collect();
        assert_eq!(
            status(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            431
        );
    }

    #[test]
    fn a_head_over_the_limit_is_refused_without_its_end() {
        let mut input = b"GET /".to_vec();
        input.resize(MAX_HEAD - 1, b'a');
        assert_eq!(parse(&input), Ok(None));
        input.push(b'a');
        assert_eq!(parse(&input).unwrap_err().status, 431);
        input.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(parse(&input).unwrap_err().status, 431);
    }

    #[test]
    fn other_methods_parse_for_the_router_to_refuse() {
        let (req, _) = ok(b"DELETE /x HTTP/1.0\r\n\r\n");
        assert_eq!(req.method, Method::Other);
    }

    /// Hostile bytes never panic, and a request never uses more than it
    /// was given.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = crate::rng::Rng::new(7);
        let alphabet = b"GET POST /?:\r\n Content-Length: 0123456789chunked\x00\xff";
        for _ in 0..20_000 {
            let len = rng.below(200);
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            if let Ok(Some((_, used))) = parse(&input) {
                assert!(used <= input.len());
            }
        }
    }
}
