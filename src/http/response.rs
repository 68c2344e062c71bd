//! HTTP responses as bytes: status line, `Content-Type`,
//! `Content-Length`, `Cache-Control: no-store`, `Connection: close`, any
//! extra headers, then the body.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub const TEXT: &str = "text/plain; charset=utf-8";
pub const JSON: &str = "application/json";
/// The Prometheus text exposition format, version 0.0.4.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// A short text body (an error of the codec, a refusal).
    pub fn text(status: u16, text: &str) -> Response {
        let mut body = text.as_bytes().to_vec();
        body.push(b'\n');
        Response::new(status, TEXT, body)
    }

    /// `value` as JSON.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(mut body) => {
                body.push(b'\n');
                Response::new(status, JSON, body)
            }
            Err(_) => Response::error(500, "internal", "cannot encode the answer"),
        }
    }

    /// The API's error shape: `{"error":{"code":CODE,"message":MESSAGE}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        let value = serde_json::json!({"error": {"code": code, "message": message}});
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Response::new(status, JSON, body)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire; with `head_only` (a HEAD request) the body
    /// is left out but its length still given.
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.body.len());
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        out.extend_from_slice(head.as_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            // Header values are ours; a stray line break would split them.
            out.extend(value.bytes().filter(|&b| b != b'\r' && b != b'\n'));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_of_a_response() {
        let r = Response::text(404, "no such path").with_header("Allow", "GET");
        let text = String::from_utf8(r.encode(false)).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 13\r\nCache-Control: no-store\r\nConnection: close\r\n\
             Allow: GET\r\n\r\nno such path\n"
        );
        let head = String::from_utf8(r.encode(true)).unwrap();
        assert!(head.ends_with("Allow: GET\r\n\r\n"), "{head}");
    }

    #[test]
    fn errors_are_json() {
        let r = Response::error(405, "method_not_allowed", "use \"GET\"");
        assert_eq!(r.content_type, JSON);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use \\\"GET\\\"\"}}\n"
        );
    }

    #[test]
    fn header_values_cannot_split() {
        let r = Response::text(200, "").with_header("X", "a\r\nEvil: 1");
        let text = String::from_utf8(r.encode(true)).unwrap();
        assert!(text.contains("X: aEvil: 1\r\n"), "{text}");
    }
}
