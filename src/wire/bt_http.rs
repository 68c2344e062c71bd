//! The BitTorrent HTTP tracker protocol (BEP 3 announce, BEP 23 compact
//! peers, BEP 7 `peers6`, BEP 48 scrape), sans-IO: one request head in, a
//! typed request or error out; replies are bencoded into a caller's buffer.
//! Only the head is read (request line and headers, at most
//! [`MAX_REQUEST_HEAD`] bytes); a body, if any, is ignored.

use super::bt_udp::{Event, ScrapeStats, push_compact};
use crate::wire::text::{Keep, Plus, percent_decode_into, percent_encode};
use crate::wire::tracker::{InfoHash, PeerId};
use std::fmt;
use std::net::SocketAddr;

/// Most bytes of request line plus headers a tracker reads.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Info hashes one scrape may ask about.
pub const MAX_SCRAPE_HASHES: usize = 74;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    /// `compact=0` was asked; the reply is compact anyway (BEP 23 allows it).
    pub compact: bool,
    pub event: Event,
    /// Peers wanted, when given.
    pub numwant: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Announce(Announce),
    Scrape(Vec<InfoHash>),
}

/// Why a request head is refused; each maps to an HTTP status and a
/// `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No end of head within [`MAX_REQUEST_HEAD`] bytes (414).
    TooLong,
    /// Not `GET target HTTP/1.x` (400).
    BadRequestLine,
    /// A method other than GET (405).
    BadMethod,
    /// A path other than /announce and /scrape (404).
    NotFound,
    /// A missing or malformed parameter, by name (400).
    BadParam(&'static str),
    MissingParam(&'static str),
}

impl HttpError {
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            HttpError::TooLong => (414, "URI Too Long"),
            HttpError::BadMethod => (405, "Method Not Allowed"),
            HttpError::NotFound => (404, "Not Found"),
            _ => (400, "Bad Request"),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::TooLong => write!(f, "request head longer than {MAX_REQUEST_HEAD} bytes"),
            HttpError::BadRequestLine => f.write_str("malformed request line"),
            HttpError::BadMethod => f.write_str("only GET is supported"),
            HttpError::NotFound => f.write_str("unknown path; use /announce or /scrape"),
            HttpError::BadParam(p) => write!(f, "invalid parameter {p}"),
            HttpError::MissingParam(p) => write!(f, "missing parameter {p}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Finds the end of a request head: the length up to and including the
/// blank line, or `None` if not there yet.
fn head_end(input: &[u8]) -> Option<usize> {
    let limit = input.len().min(MAX_REQUEST_HEAD);
    let b = &input[..limit];
    (0..b.len()).find_map(|i| {
        if b[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if b[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// Parses a request head from the start of `input`. `Ok(None)`: the head
/// is incomplete (read more). On success, also the bytes the head used.
pub fn parse_request(input: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
    let Some(end) = head_end(input) else {
        return if input.len() >= MAX_REQUEST_HEAD {
            Err(HttpError::TooLong)
        } else {
            Ok(None)
        };
    };
    let head = &input[..end];
    let line_end = head.iter().position(|&c| c == b'\n').unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let mut parts = line.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadRequestLine);
    };
    if !version.starts_with(b"HTTP/1.") {
        return Err(HttpError::BadRequestLine);
    }
    if method != b"GET" {
        return Err(HttpError::BadMethod);
    }
    let (path, query) = match target.iter().position(|&c| c == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &b""[..]),
    };
    let req = match path {
        b"/announce" => Request::Announce(parse_announce(query)?),
        b"/scrape" => Request::Scrape(parse_scrape(query)?),
        _ => return Err(HttpError::NotFound),
    };
    Ok(Some((req, end)))
}

/// The `key=value` pairs of a query string, values still escaped.
fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&c| c == b'=') {
            Some(eq) => (&p[..eq], &p[eq + 1..]),
            None => (p, &b""[..]),
        })
}

fn id20(raw: &[u8], name: &'static str, buf: &mut Vec<u8>) -> Result<[u8; 20], HttpError> {
    if raw.len() > 60 || percent_decode_into(raw, Plus::Space, buf).is_err() || buf.len() != 20 {
        return Err(HttpError::BadParam(name));
    }
    let mut id = [0u8; 20];
    id.copy_from_slice(buf);
    Ok(id)
}

fn number<T: std::str::FromStr>(raw: &[u8], name: &'static str) -> Result<T, HttpError> {
    std::str::from_utf8(raw)
        .ok()
        .filter(|s| s.len() <= 20)
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::BadParam(name))
}

fn parse_announce(query: &[u8]) -> Result<Announce, HttpError> {
    let mut buf = Vec::with_capacity(20);
    let (mut info_hash, mut peer_id, mut port) = (None, None, None);
    let (mut uploaded, mut downloaded, mut left) = (0, 0, None);
    let mut compact = true;
    let mut event = Event::None;
    let mut numwant = None;
    for (key, value) in pairs(query) {
        match key {
            b"info_hash" => info_hash = Some(id20(value, "info_hash", &mut buf)?),
            b"peer_id" => peer_id = Some(id20(value, "peer_id", &mut buf)?),
            b"port" => port = Some(number::<u16>(value, "port")?),
            b"uploaded" => uploaded = number(value, "uploaded")?,
            b"downloaded" => downloaded = number(value, "downloaded")?,
            b"left" => left = Some(number(value, "left")?),
            b"compact" => compact = value != b"0",
            b"numwant" | b"num_want" => numwant = Some(number(value, "numwant")?),
            b"event" => {
                event = match value {
                    b"" | b"empty" => Event::None,
                    b"started" => Event::Started,
                    b"completed" => Event::Completed,
                    b"stopped" => Event::Stopped,
                    _ => return Err(HttpError::BadParam("event")),
                }
            }
            _ => {} // key, ip, trackerid, supportcrypto, ...: not used
        }
    }
    Ok(Announce {
        info_hash: info_hash.ok_or(HttpError::MissingParam("info_hash"))?,
        peer_id: peer_id.ok_or(HttpError::MissingParam("peer_id"))?,
        port: port.ok_or(HttpError::MissingParam("port"))?,
        uploaded,
        downloaded,
        // BEP 3 makes left required; absent, the peer is taken as leeching.
        left: left.unwrap_or(u64::MAX),
        compact,
        event,
        numwant,
    })
}

fn parse_scrape(query: &[u8]) -> Result<Vec<InfoHash>, HttpError> {
    let mut buf = Vec::with_capacity(20);
    let mut hashes = Vec::new();
    for (key, value) in pairs(query) {
        if key == b"info_hash" {
            if hashes.len() == MAX_SCRAPE_HASHES {
                return Err(HttpError::BadParam("info_hash"));
            }
            hashes.push(id20(value, "info_hash", &mut buf)?);
        }
    }
    if hashes.is_empty() {
        return Err(HttpError::MissingParam("info_hash"));
    }
    Ok(hashes)
}

/// Percent-encodes every byte (for clients and tests building queries).
pub fn escape(bytes: &[u8]) -> String {
    percent_encode(bytes, Keep::Nothing)
}

fn bstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(s);
}

fn bint(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b'e');
}

/// The bencoded body of an announce reply. Keys in byte order: complete,
/// incomplete, interval, min interval, peers, peers6 (only if any).
pub fn encode_announce(
    out: &mut Vec<u8>,
    interval: u32,
    complete: u32,
    incomplete: u32,
    peers: &[SocketAddr],
) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for p in peers {
        push_compact(if p.is_ipv4() { &mut v4 } else { &mut v6 }, p);
    }
    out.push(b'd');
    bstr(out, b"complete");
    bint(out, complete.into());
    bstr(out, b"incomplete");
    bint(out, incomplete.into());
    bstr(out, b"interval");
    bint(out, interval.into());
    bstr(out, b"min interval");
    bint(out, (interval / 2).max(1).into());
    bstr(out, b"peers");
    bstr(out, &v4);
    if !v6.is_empty() {
        bstr(out, b"peers6");
        bstr(out, &v6);
    }
    out.push(b'e');
}

/// The bencoded body of a scrape reply (BEP 48).
pub fn encode_scrape(out: &mut Vec<u8>, files: &[(InfoHash, ScrapeStats)]) {
    let mut sorted: Vec<&(InfoHash, ScrapeStats)> = files.iter().collect();
    sorted.sort_by_key(|(h, _)| *h);
    sorted.dedup_by_key(|(h, _)| *h);
    out.extend_from_slice(b"d5:filesd");
    for (hash, s) in sorted {
        bstr(out, hash);
        out.push(b'd');
        bstr(out, b"complete");
        bint(out, s.seeders.into());
        bstr(out, b"downloaded");
        bint(out, s.completed.into());
        bstr(out, b"incomplete");
        bint(out, s.leechers.into());
        out.push(b'e');
    }
    out.extend_from_slice(b"ee");
}

/// The bencoded body of a refusal: `d14:failure reason...e`.
pub fn encode_failure(out: &mut Vec<u8>, reason: &str) {
    out.push(b'd');
    bstr(out, b"failure reason");
    bstr(out, reason.as_bytes());
    out.push(b'e');
}

/// A whole HTTP/1.0 reply: status line, headers, `body`; the connection
/// closes after it.
pub fn encode_reply(out: &mut Vec<u8>, status: u16, reason: &str, body: &[u8]) {
    out.extend_from_slice(
        format!(
            "HTTP/1.0 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::bencode::{Value, decode};

    fn get(query: &str) -> Vec<u8> {
        format!("GET /announce?{query} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
    }

    const Q: &str = "info_hash=%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab\
        &peer_id=-TR3000-000000000001&port=6881&uploaded=0&downloaded=5&left=0\
        &compact=1&event=started&numwant=30";

    #[test]
    fn announce_parses() {
        let req = get(Q);
        let (got, used) = parse_request(&req).unwrap().unwrap();
        assert_eq!(used, req.len());
        let Request::Announce(a) = got else {
            panic!("not an announce")
        };
        assert_eq!(a.info_hash, [0xab; 20]);
        assert_eq!(&a.peer_id, b"-TR3000-000000000001");
        assert_eq!((a.port, a.downloaded, a.left), (6881, 5, 0));
        assert_eq!(
            (a.event, a.numwant, a.compact),
            (Event::Started, Some(30), true)
        );
    }

    #[test]
    fn escape_round_trips() {
        let bytes: Vec<u8> = (0..20).map(|i| i * 13).collect();
        let mut out = Vec::new();
        assert!(percent_decode_into(escape(&bytes).as_bytes(), Plus::Space, &mut out).is_ok());
        assert_eq!(out, bytes);
    }

    #[test]
    fn incomplete_and_malformed_heads() {
        assert_eq!(parse_request(b"GET /announce?x HTTP/1.1\r\n"), Ok(None));
        assert_eq!(
            parse_request(&vec![b'a'; MAX_REQUEST_HEAD]),
            Err(HttpError::TooLong)
        );
        assert_eq!(
            parse_request(b"GARBAGE\r\n\r\n"),
            Err(HttpError::BadRequestLine)
        );
        assert_eq!(
            parse_request(b"POST /announce HTTP/1.1\r\n\r\n"),
            Err(HttpError::BadMethod)
        );
        assert_eq!(
            parse_request(b"GET /x HTTP/1.1\r\n\r\n"),
            Err(HttpError::NotFound)
        );
        assert_eq!(
            parse_request(&get("peer_id=-TR3000-000000000001&port=1")),
            Err(HttpError::MissingParam("info_hash"))
        );
        assert_eq!(
            parse_request(&get("info_hash=%zz")),
            Err(HttpError::BadParam("info_hash"))
        );
        assert_eq!(
            parse_request(&get(&Q.replace("port=6881", "port=70000"))),
            Err(HttpError::BadParam("port"))
        );
        assert_eq!(
            parse_request(&get(&Q.replace("event=started", "event=bogus"))),
            Err(HttpError::BadParam("event"))
        );
    }

    #[test]
    fn scrape_parses_and_replies() {
        let h = escape(&[7; 20]);
        let req = format!("GET /scrape?info_hash={h}&info_hash={h} HTTP/1.0\r\n\r\n");
        let (got, _) = parse_request(req.as_bytes()).unwrap().unwrap();
        assert_eq!(got, Request::Scrape(vec![[7; 20], [7; 20]]));
        let stats = ScrapeStats {
            seeders: 1,
            completed: 2,
            leechers: 3,
        };
        let mut body = Vec::new();
        encode_scrape(&mut body, &[([7; 20], stats), ([7; 20], stats)]);
        let v = decode(&body).unwrap();
        let file = v.get(b"files").unwrap().get(&[7; 20]).unwrap();
        assert_eq!(file.get(b"downloaded").unwrap().as_int(), Some(2));
    }

    #[test]
    fn replies_are_strict_bencode() {
        let peers = [
            SocketAddr::from(([10, 0, 0, 1], 6881)),
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 7000)),
        ];
        let mut body = Vec::new();
        encode_announce(&mut body, 60, 1, 2, &peers);
        let v = decode(&body).unwrap();
        assert_eq!(v.get(b"interval").and_then(Value::as_int), Some(60));
        assert_eq!(
            v.get(b"peers").and_then(Value::as_bytes),
            Some(&[10, 0, 0, 1, 0x1a, 0xe1][..])
        );
        assert_eq!(
            v.get(b"peers6").and_then(Value::as_bytes).unwrap().len(),
            18
        );
        let mut fail = Vec::new();
        encode_failure(&mut fail, "nope");
        assert_eq!(fail, b"d14:failure reason4:nopee");
        let mut reply = Vec::new();
        encode_reply(&mut reply, 400, "Bad Request", &fail);
        assert!(reply.starts_with(b"HTTP/1.0 400 Bad Request\r\n"));
        assert!(reply.ends_with(b"\r\n\r\nd14:failure reason4:nopee"));
    }

    #[test]
    fn any_input_parses_or_fails_without_panic() {
        let mut rng = crate::rng::Rng::new(5);
        let alphabet = b"GET /announce?info_hash=%&=peer_idport0123456789abcdef \r\nHTTP/1.";
        for _ in 0..20_000 {
            let len = rng.below(300);
            let b: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            if let Ok(Some((_, used))) = parse_request(&b) {
                assert!(used <= b.len());
            }
        }
    }
}
