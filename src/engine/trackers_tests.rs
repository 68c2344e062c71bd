//! An engine with several trackers: every one hears every announce, a
//! query goes to all that are up and is answered from whichever answer,
//! and one tracker down, refusing or silent never fails what another can
//! answer.

use super::tests::{PIECE, file};
use super::*;
use crate::engine::pushed::DIAL_PUSH_DELAY;
use crate::meta::Info;
use crate::wire::peer::Handshake;
use crate::wire::tracker::{ErrorCode, ListEntry, Lookup, Pieces, Request, Response};
use sha1::{Digest, Sha1};

const TRACKERS: [&str; 3] = ["10.0.0.1:6969", "10.0.0.2:6969", "10.0.0.3:6969"];

struct Multi {
    e: Engine<MemStorage>,
    now: Time,
    /// Each tracker's current session.
    links: Vec<LinkId>,
    /// Actions not looked at yet.
    backlog: Vec<Action>,
}

impl Multi {
    /// An engine with `n` trackers, whose sessions are all up.
    fn new(n: usize, disk: MemStorage) -> Multi {
        let config = Config {
            trackers: TRACKERS[..n].iter().map(|a| a.parse().unwrap()).collect(),
            listen_port: 6881,
            listen: "10.0.0.20:6881".parse().unwrap(),
            dir: "/dl".into(),
            piece_length: PIECE,
            max_peers: 50,
            upload_slots: 2,
            private_shares: false,
        };
        let mut e = Engine::new(config, disk, Rng::new(3), Time::ZERO);
        e.start(Time::ZERO, &[]).unwrap();
        let mut m = Multi {
            e,
            now: Time::ZERO,
            links: Vec::new(),
            backlog: Vec::new(),
        };
        m.links = m.dials();
        assert_eq!(m.links.len(), n, "one dial per tracker");
        for i in 0..n {
            m.welcome(i);
        }
        m
    }

    /// The trackers dialed since the last look, in configured order.
    fn dials(&mut self) -> Vec<LinkId> {
        let mut found: Vec<(usize, LinkId)> = self
            .settle()
            .into_iter()
            .filter_map(|a| match a {
                Action::Dial { link, addr } => {
                    let i = TRACKERS.iter().position(|t| *t == addr.to_string())?;
                    Some((i, link))
                }
                _ => None,
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, l)| l).collect()
    }

    fn welcome(&mut self, i: usize) {
        self.e.link_opened(self.now, self.links[i]);
        let hello = self.sent(self.links[i]);
        assert!(matches!(
            Request::decode(&hello),
            Ok(Some((Request::Hello { .. }, _)))
        ));
        self.answer(
            i,
            Response::Welcome {
                version: 1,
                idle_timeout_secs: 120,
            },
        );
        // The AcceptDials that follows every welcome.
        self.answer(i, Response::Ack);
    }

    /// Runs the jobs asked for; returns every other action not looked at
    /// yet.
    fn settle(&mut self) -> Vec<Action> {
        while let Some(a) = self.e.poll_action() {
            match a {
                Action::Job(job) => {
                    let done = self.e.storage().run(&job);
                    self.e.job_done(self.now, done);
                }
                other => self.backlog.push(other),
            }
        }
        std::mem::take(&mut self.backlog)
    }

    /// The bytes sent on the links `pick` chooses, by link; other actions
    /// stay in the backlog.
    fn take_sends(&mut self, pick: impl Fn(LinkId) -> bool) -> Vec<(LinkId, Vec<u8>)> {
        let mut out = Vec::new();
        for a in self.settle() {
            match a {
                a @ (Action::Send { .. } | Action::SendInfo { .. }) => match a.bytes_sent() {
                    Some((link, bytes)) if pick(link) => out.push((link, bytes)),
                    _ => self.backlog.push(a),
                },
                other => self.backlog.push(other),
            }
        }
        out
    }

    /// Every request sent to each tracker since the last look but the
    /// AcceptDials of each new session.
    fn requests(&mut self) -> Vec<Vec<Request>> {
        let mut all = self.all_requests();
        for r in &mut all {
            r.retain(|r| !matches!(r, Request::AcceptDials));
        }
        all
    }

    /// Every request sent to each tracker since the last look.
    fn all_requests(&mut self) -> Vec<Vec<Request>> {
        let mut out = vec![Vec::new(); self.links.len()];
        let links = self.links.clone();
        for (link, bytes) in self.take_sends(|l| links.contains(&l)) {
            if let Some(i) = links.iter().position(|&l| l == link) {
                let mut used = 0;
                while let Ok(Some((req, n))) = Request::decode(&bytes[used..]) {
                    out[i].push(req);
                    used += n;
                }
            }
        }
        out
    }

    fn sent(&mut self, link: LinkId) -> Vec<u8> {
        let sends = self.take_sends(|l| l == link);
        sends.into_iter().flat_map(|(_, b)| b).collect()
    }

    fn answer(&mut self, i: usize, resp: Response) {
        let mut buf = Vec::new();
        resp.encode(&mut buf);
        assert_eq!(self.e.link_input(self.now, self.links[i], &buf), buf.len());
    }

    fn control(&mut self, line: &str) -> LinkId {
        let c = self.e.control_opened(self.now);
        self.e.link_input(self.now, c, line.as_bytes());
        c
    }

    fn reply(&mut self, control: LinkId) -> String {
        String::from_utf8(self.sent(control)).unwrap()
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = self.e.poll_timeout().min(end);
            self.e.handle_timeout(self.now);
        }
    }
}

fn entry(name: &str, hash: u8, peers: u32) -> ListEntry {
    ListEntry {
        info_hash: [hash; 20],
        length: 1000,
        piece_length: PIECE,
        peers,
        seeders: peers,
        files: 1,
        name: name.into(),
    }
}

fn page(entries: Vec<ListEntry>) -> Response {
    Response::ListPage {
        total: entries.len() as u32,
        entries,
    }
}

fn not_found() -> Response {
    Response::Error {
        code: ErrorCode::FILE_NOT_FOUND,
        message: "no file named f.bin".into(),
    }
}

#[test]
fn every_tracker_hears_every_announce_have_and_leave() {
    let (bytes, info) = file(4);
    let mut disk = MemStorage::default();
    disk.fs.files.insert("/data/f.bin".into(), bytes);
    let mut m = Multi::new(3, disk);
    let c = m.control("share /data/f.bin\n");
    assert!(m.reply(c).starts_with("{\"ok\":true"));
    m.advance(Duration::from_millis(300));
    for reqs in m.requests() {
        assert!(
            reqs.iter().any(|r| matches!(
                r,
                Request::Announce {
                    pieces: Pieces::All,
                    ..
                }
            )),
            "{reqs:?}"
        );
    }
    let c = m.control("remove f.bin\n");
    m.reply(c);
    for reqs in m.requests() {
        assert_eq!(
            reqs,
            [Request::Leave {
                info_hash: info.info_hash
            }]
        );
    }
}

#[test]
fn list_is_the_union_of_the_live_trackers_catalogs() {
    let mut m = Multi::new(3, MemStorage::default());
    let c = m.control("list\n");
    let asked = m.requests();
    assert!(
        asked
            .iter()
            .all(|r| matches!(r[..], [Request::List { .. }]))
    );
    m.answer(0, page(vec![entry("a", 1, 2), entry("b", 2, 1)]));
    assert_eq!(m.reply(c), "", "waits for the others");
    // The second tracker dies before it answers; the third knows more
    // peers of `b` and a file the first does not.
    m.e.link_closed(m.now, m.links[1]);
    m.answer(2, page(vec![entry("b", 2, 5), entry("c", 3, 1)]));
    let reply = m.reply(c);
    let v: serde_json::Value = serde_json::from_str(reply.trim_end()).unwrap();
    let files = v["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(files[1]["peers"], 5);
}

#[test]
fn list_works_while_one_tracker_is_up() {
    let mut m = Multi::new(3, MemStorage::default());
    m.e.link_closed(m.now, m.links[0]);
    m.e.link_closed(m.now, m.links[2]);
    let c = m.control("list\n");
    let asked = m.requests();
    assert!(asked[0].is_empty() && asked[2].is_empty(), "{asked:?}");
    m.answer(1, page(vec![entry("a", 1, 1)]));
    assert!(m.reply(c).contains("\"name\":\"a\""));
    // With none up, it says which trackers it tried.
    m.e.link_closed(m.now, m.links[1]);
    let c = m.control("list\n");
    let reply = m.reply(c);
    assert!(reply.contains("tracker_unreachable"), "{reply}");
    assert!(
        reply.contains("10.0.0.1:6969, 10.0.0.2:6969, 10.0.0.3:6969"),
        "{reply}"
    );
}

#[test]
fn a_silent_tracker_is_not_waited_for_past_patience() {
    let mut m = Multi::new(2, MemStorage::default());
    let c = m.control("list\n");
    m.answer(1, page(vec![entry("a", 1, 1)]));
    m.advance(query::QUERY_PATIENCE - Duration::from_millis(500));
    assert_eq!(m.reply(c), "");
    m.advance(Duration::from_secs(1));
    assert!(m.reply(c).contains("\"name\":\"a\""));
    // Its late answer goes nowhere.
    m.answer(0, page(vec![entry("z", 9, 1)]));
    assert_eq!(m.reply(c), "");
}

#[test]
fn get_takes_metadata_from_whichever_tracker_has_it() {
    let (_, info) = file(4);
    let mut m = Multi::new(3, MemStorage::default());
    let c = m.control("get f.bin\n");
    let asked = m.requests();
    assert!(
        asked
            .iter()
            .all(|r| matches!(r[..], [Request::GetMeta(Lookup::Name(_))]))
    );
    m.answer(0, not_found());
    m.answer(
        1,
        Response::Meta {
            info: info.bencoded.clone(),
        },
    );
    // The download starts: announced to every tracker, peers asked of all.
    let reply = m.reply(c);
    assert!(!reply.contains("\"ok\":false"), "{reply}");
    assert!(m.e.status().files.iter().any(|f| f.name == "f.bin"));
    m.answer(2, not_found());
    let asked = m.requests();
    for reqs in &asked {
        assert!(
            reqs.iter().any(|r| matches!(r, Request::GetPeers { .. })),
            "{asked:?}"
        );
    }
}

#[test]
fn get_fails_with_the_most_telling_error() {
    let mut m = Multi::new(2, MemStorage::default());
    let c = m.control("get f.bin\n");
    m.answer(0, not_found());
    m.answer(
        1,
        Response::Error {
            code: ErrorCode::AMBIGUOUS_NAME,
            message: "2 files are named f.bin".into(),
        },
    );
    let reply = m.reply(c);
    assert!(reply.contains("\"ambiguous\""), "{reply}");
    // Metadata for another file than the one asked for is refused.
    let (_, info) = file(4);
    let hash: String = info.info_hash.iter().map(|b| format!("{b:02x}")).collect();
    let other = Info::new("g.bin", 10, PIECE, Sha1::digest(b"x").to_vec()).unwrap();
    let c = m.control(&format!("get {hash}\n"));
    m.answer(0, not_found());
    m.answer(
        1,
        Response::Meta {
            info: other.bencoded,
        },
    );
    let reply = m.reply(c);
    assert!(reply.contains("another file"), "{reply}");
}

#[test]
fn a_tracker_that_comes_back_hears_everything_again() {
    let (bytes, info) = file(4);
    let mut disk = MemStorage::default();
    disk.fs.files.insert("/data/f.bin".into(), bytes);
    let mut m = Multi::new(2, disk);
    let c = m.control("share /data/f.bin\n");
    m.reply(c);
    m.requests();
    m.e.link_closed(m.now, m.links[1]);
    // A piece verified meanwhile is told only to the live one.
    m.advance(Duration::from_secs(1));
    let back = m.dials();
    assert_eq!(back.len(), 1, "the lost tracker is dialed again");
    m.links[1] = back[0];
    m.welcome(1);
    let asked = m.requests();
    assert!(
        asked[1].iter().any(|r| matches!(r, Request::Announce { info: i, pieces: Pieces::All } if *i == info.bencoded)),
        "{asked:?}"
    );
    assert!(
        asked[0].iter().all(|r| matches!(r, Request::KeepAlive)),
        "{asked:?}"
    );
}

#[test]
fn bittorrent_peers_we_dialed_are_vouched_for_to_every_tracker() {
    use crate::wire::peer::{Handshake, Message};
    use crate::wire::tracker::{PeerEntry, Vouched};
    let (_, info) = file(4);
    let mut m = Multi::new(3, MemStorage::default());
    let g = m.control("get f.bin\n");
    m.answer(
        0,
        Response::Meta {
            info: info.bencoded.clone(),
        },
    );
    m.answer(1, not_found());
    m.answer(2, not_found());
    assert!(!m.reply(g).contains("\"ok\":false"));
    let asked = m.requests();
    assert!(
        matches!(
            asked[0][..],
            [_, Request::Announce { .. }, Request::GetPeers { .. }]
        ),
        "{asked:?}"
    );
    m.answer(
        0,
        Response::Announced {
            info_hash: info.info_hash,
        },
    );
    let lt: SocketAddr = "10.0.0.30:51413".parse().unwrap();
    let sta: SocketAddr = "10.0.0.31:6881".parse().unwrap();
    let entry = |peer_id: &[u8; 20], addr| PeerEntry {
        peer_id: *peer_id,
        addr,
        pieces: Pieces::All,
    };
    m.answer(
        0,
        Response::Peers {
            info_hash: info.info_hash,
            peers: vec![
                entry(b"-LT2080-MunAyFca4prF", lt),
                entry(b"-ST0100-000000000031", sta),
            ],
        },
    );
    let dials: Vec<(LinkId, SocketAddr)> = m
        .settle()
        .into_iter()
        .filter_map(|a| match a {
            Action::Dial { link, addr } => Some((link, addr)),
            _ => None,
        })
        .collect();
    assert_eq!(dials.len(), 2, "{dials:?}");
    for &(link, addr) in &dials {
        m.e.link_opened(m.now, link);
        let id = if addr == lt {
            *b"-LT2080-MunAyFca4prF"
        } else {
            *b"-ST0100-000000000031"
        };
        let mut hello = Vec::new();
        Handshake::new(info.info_hash, id).encode(&mut hello);
        Message::HaveAll.encode(&mut hello);
        m.e.link_input(m.now, link, &hello);
    }
    m.advance(Duration::from_millis(1100));
    let want = Request::Vouch {
        info_hash: info.info_hash,
        peers: vec![Vouched {
            peer_id: *b"-LT2080-MunAyFca4prF",
            addr: lt,
            seeder: true,
        }],
    };
    let asked = m.requests();
    for reqs in &asked {
        assert_eq!(reqs.iter().filter(|r| **r == want).count(), 1, "{asked:?}");
    }
    // Nothing new, nothing sent; the peer gone, the vouch is withdrawn.
    m.advance(Duration::from_secs(2));
    assert!(
        m.requests()
            .iter()
            .flatten()
            .all(|r| !matches!(r, Request::Vouch { .. }))
    );
    let lt_link = dials.iter().find(|d| d.1 == lt).unwrap().0;
    m.e.link_closed(m.now, lt_link);
    m.advance(Duration::from_millis(1100));
    let empty = Request::Vouch {
        info_hash: info.info_hash,
        peers: vec![],
    };
    for reqs in m.requests() {
        assert!(reqs.contains(&empty), "{reqs:?}");
    }
}

#[test]
fn a_list_pages_each_tracker_to_its_end() {
    let mut m = Multi::new(2, MemStorage::default());
    let c = m.control("list\n");
    m.requests();
    // The first tracker has 3 files, one page of 2 at a time.
    m.answer(
        0,
        Response::ListPage {
            total: 3,
            entries: vec![entry("a", 1, 1), entry("b", 2, 1)],
        },
    );
    let asked = m.requests();
    assert!(
        matches!(asked[0][..], [Request::List { offset: 2, .. }]),
        "{asked:?}"
    );
    m.answer(1, page(vec![entry("a", 1, 1)]));
    assert_eq!(m.reply(c), "", "the first tracker's last page is still out");
    m.answer(
        0,
        Response::ListPage {
            total: 3,
            entries: vec![entry("c", 3, 1)],
        },
    );
    let reply = m.reply(c);
    for name in ["\"a\"", "\"b\"", "\"c\""] {
        assert!(reply.contains(name), "{reply}");
    }
}

impl Multi {
    /// The peers dialed since the last look (trackers left out).
    fn peer_dials(&mut self) -> Vec<(LinkId, SocketAddr)> {
        let mut out = Vec::new();
        for a in self.settle() {
            match a {
                Action::Dial { link, addr } if !TRACKERS.contains(&addr.to_string().as_str()) => {
                    out.push((link, addr))
                }
                other => self.backlog.push(other),
            }
        }
        out
    }

    /// A seeder of a 4-piece file shared from /data/f.bin (private when
    /// `private`), its first announces done.
    fn seeding(private: bool) -> (Multi, Info) {
        let (bytes, _) = file(4);
        let mut disk = MemStorage::default();
        disk.fs.files.insert("/data/f.bin".into(), bytes);
        let mut m = Multi::new(1, disk);
        m.e.config.private_shares = private;
        let c = m.control("share /data/f.bin\n");
        m.reply(c);
        let asked = m.requests();
        let info = asked[0]
            .iter()
            .find_map(|r| match r {
                Request::Announce { info, .. } => Info::from_bencoded(info).ok(),
                _ => None,
            })
            .expect("the share is announced");
        assert_eq!(info.private(), private);
        (m, info)
    }
}

#[test]
fn a_seeder_sends_accept_dials_and_dials_a_pushed_client_once_per_interval() {
    let (mut m, info) = Multi::seeding(false);
    let client: SocketAddr = "192.0.2.7:51413".parse().unwrap();
    let dial = |hash| Response::Dial {
        info_hash: hash,
        addr: client,
    };
    m.answer(0, dial(info.info_hash));
    // Not at once: the client may be dialing us (see DIAL_PUSH_DELAY).
    assert_eq!(m.peer_dials(), vec![]);
    m.advance(DIAL_PUSH_DELAY);
    let first = m.peer_dials();
    assert_eq!(first.iter().map(|d| d.1).collect::<Vec<_>>(), vec![client]);
    // Named again (another tracker, a new `started`): not dialed twice.
    m.answer(0, dial(info.info_hash));
    // A file we do not hold is no reason to dial.
    m.answer(0, dial([0x42; 20]));
    m.advance(DIAL_PUSH_DELAY);
    assert_eq!(m.peer_dials(), vec![]);
    // A Dial takes no place among the answers: the next response still
    // answers the oldest request (here the hello's AcceptDials, then the
    // announce; an error for either is only logged).
    m.answer(
        0,
        Response::Error {
            code: ErrorCode::UNKNOWN_MESSAGE,
            message: "unknown message id 0x09".into(),
        },
    );
    // The client refused us (it may be behind a NAT).
    m.e.link_closed(m.now, first[0].0);
    m.e.link_closed(m.now, m.links[0]);
    m.advance(crate::engine::pushed::DIAL_PUSH_INTERVAL);
    let back = m.dials();
    m.links[0] = back[0];
    m.welcome(0);
    assert!(
        m.all_requests()[0]
            .iter()
            .any(|r| matches!(r, Request::AcceptDials)),
        "every new session asks for Dials"
    );
    m.answer(0, dial(info.info_hash));
    m.advance(DIAL_PUSH_DELAY);
    let again = m.peer_dials();
    assert_eq!(again.len(), 1, "dialed again after the interval");
    assert_eq!(again[0].1, client);
}

/// Two connections between the pair are what the wait avoids: libtorrent
/// can close both (see `DIAL_PUSH_DELAY`).
#[test]
fn a_pushed_client_that_dials_us_first_is_not_dialed() {
    let (mut m, info) = Multi::seeding(false);
    let client: SocketAddr = "192.0.2.7:51413".parse().unwrap();
    m.answer(
        0,
        Response::Dial {
            info_hash: info.info_hash,
            addr: client,
        },
    );
    // It dials in from an ephemeral port and names its listen port.
    let link = m.e.peer_accepted(m.now, "192.0.2.7:40123".parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, *b"-LT2080-MunAyFca4prF").encode(&mut hello);
    let offer = crate::wire::extension::Offer {
        port: client.port(),
        client: "libtorrent/2.0.8",
        pex: true,
        metadata_size: None,
    };
    crate::wire::extension::ExtHandshake::encode(&offer, &mut hello);
    assert_eq!(m.e.link_input(m.now, link, &hello), hello.len());
    m.advance(DIAL_PUSH_DELAY + Duration::from_secs(1));
    assert_eq!(m.peer_dials(), vec![], "the client is connected already");
}

#[test]
fn a_pushed_client_is_never_dialed_for_a_private_file() {
    let (mut m, info) = Multi::seeding(true);
    m.answer(
        0,
        Response::Dial {
            info_hash: info.info_hash,
            addr: "192.0.2.7:51413".parse().unwrap(),
        },
    );
    m.advance(DIAL_PUSH_DELAY);
    assert_eq!(m.peer_dials(), vec![]);
}
