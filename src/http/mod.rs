//! HTTP/1.1 for the daemons' monitoring and API listener (`--http`),
//! sans-IO: [`request::parse`] turns the bytes a connection has sent into
//! one request (or "need more", or an error that maps to a status), and
//! [`response::Response`] builds the bytes of the answer. One request per
//! connection: every response says `Connection: close`.
//!
//! [`prometheus`] renders metrics in the Prometheus text format,
//! [`auth`] checks bearer tokens, and [`status_page`] is the page served
//! at `/`. What a path means belongs to each
//! daemon's router (`peer::http`, `tracker::http_api`).

pub mod auth;
pub mod prometheus;
pub mod request;
pub mod response;
pub mod status_page;

pub use request::{HttpError, MAX_BODY, MAX_HEAD, Method, Request, parse};
pub use response::Response;

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
