//! BEP 9 metadata and BEP 11 PEX on one engine: the info dict served,
//! fetched from a peer and checked, a wrong dict's sender banned, a size
//! over the cap never asked for; PEX sent at most once a minute, read
//! with a rate limit, and off for private files.

use super::tests::{PEER, Rig, closes, file};
use super::*;
use crate::limits::MAX_METADATA_SIZE;
use crate::meta::Info;
use crate::wire::extension::{ExtHandshake, OUR_UT_METADATA, OUR_UT_PEX, Offer};
use crate::wire::peer::{Handshake, Message};
use crate::wire::pex::Pex;
use crate::wire::tracker::{ErrorCode, Request, Response};
use crate::wire::ut_metadata::MetadataMsg;
use std::net::SocketAddr;

/// The extended ids the test peer reads messages with.
const THEIR_METADATA: u8 = 3;
const THEIR_PEX: u8 = 4;

fn their_ext(port: u16, metadata_size: Option<u64>) -> Vec<u8> {
    let offer = Offer {
        port,
        client: "test",
        pex: true,
        metadata_size,
    };
    let mut out = Vec::new();
    ExtHandshake::encode(&offer, &mut out);
    // Our encoder writes STA's ids; the test peer uses its own.
    let dict = String::from_utf8(out[6..].to_vec()).unwrap();
    let dict = dict
        .replace("ut_metadatai1e", &format!("ut_metadatai{THEIR_METADATA}e"))
        .replace("ut_pexi2e", &format!("ut_pexi{THEIR_PEX}e"));
    let mut framed = Vec::new();
    crate::wire::extension::frame(0, dict.as_bytes(), &mut framed);
    framed
}

/// The extended messages in `bytes`: (extended id, body).
fn extended(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    if let Ok(Some((_, n))) = Handshake::decode(bytes) {
        bytes = &bytes[n..];
    }
    let mut out = Vec::new();
    while let Ok(Some((m, n))) = Message::decode(bytes) {
        if let Message::Unknown { id: 20, payload } = m {
            out.push((payload[0], payload[1..].to_vec()));
        }
        bytes = &bytes[n..];
    }
    out
}

fn metadata_msgs(bytes: &[u8]) -> Vec<MetadataMsg<'static>> {
    extended(bytes)
        .into_iter()
        .filter(|(id, _)| *id == THEIR_METADATA)
        .map(|(_, body)| {
            let body: &'static [u8] = Box::leak(body.into_boxed_slice());
            MetadataMsg::decode(body).unwrap()
        })
        .collect()
}

fn pexes(bytes: &[u8]) -> Vec<Pex> {
    extended(bytes)
        .into_iter()
        .filter(|(id, _)| *id == THEIR_PEX)
        .map(|(_, body)| Pex::decode(&body).unwrap())
        .collect()
}

fn request(piece: u32) -> Vec<u8> {
    let mut out = Vec::new();
    MetadataMsg::Request(piece).encode(OUR_UT_METADATA, &mut out);
    out
}

/// A peer dialing in for `info` that offers ut_metadata and ut_pex and
/// listens on `port`.
fn peer_with_ext(rig: &mut Rig, hash: [u8; 20], id: u8, port: u16) -> LinkId {
    let link = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(hash, [id; 20]).encode(&mut hello);
    Message::HaveNone.encode(&mut hello);
    hello.extend(their_ext(port, None));
    assert_eq!(rig.input(link, &hello), hello.len());
    link
}

#[test]
fn the_info_dict_is_served_in_pieces_and_refused_past_its_end() {
    let (mut rig, _, info) = Rig::seeder();
    let link = peer_with_ext(&mut rig, info.info_hash, 9, 7000);
    let ours = rig.sent(link);
    let hs = extended(&ours)
        .into_iter()
        .find(|(id, _)| *id == 0)
        .expect("our extension handshake");
    let mut payload = vec![0];
    payload.extend(hs.1);
    let hs = ExtHandshake::decode(&payload).unwrap().unwrap();
    assert_eq!(hs.metadata_size, Some(info.bencoded.len() as u64));
    assert_eq!(
        (hs.ut_metadata, hs.ut_pex),
        (Some(OUR_UT_METADATA), Some(OUR_UT_PEX))
    );
    rig.input(link, &request(0));
    rig.input(link, &request(1));
    let got = metadata_msgs(&rig.sent(link));
    assert_eq!(
        got,
        [
            MetadataMsg::Data {
                piece: 0,
                total_size: info.bencoded.len() as u64,
                data: Box::leak(info.bencoded.clone().into_boxed_slice()),
            },
            MetadataMsg::Reject(1),
        ]
    );
}

#[test]
fn a_private_files_dict_is_not_offered_nor_served_and_it_has_no_pex() {
    let (bytes, _) = file(4);
    let mut disk = MemStorage::default();
    disk.fs.files.insert("/data/f.bin".into(), bytes);
    let mut rig = Rig::new(disk);
    rig.e.config.private_shares = true;
    let control = rig.e.control_opened(rig.now);
    rig.input(control, b"share /data/f.bin\n");
    rig.settle();
    let hash = *rig.e.torrents.keys().next().expect("shared");
    assert!(!rig.e.torrents[&hash].dht_pex_allowed());
    let a = peer_with_ext(&mut rig, hash, 9, 7000);
    let ours = rig.sent(a);
    let mut payload = vec![0];
    payload.extend(extended(&ours).remove(0).1);
    let hs = ExtHandshake::decode(&payload).unwrap().unwrap();
    assert_eq!((hs.ut_pex, hs.metadata_size), (None, None));
    rig.input(a, &request(0));
    assert_eq!(metadata_msgs(&rig.sent(a)), [MetadataMsg::Reject(0)]);
    // No PEX to its peers, whatever they offer.
    let _b = peer_with_ext(&mut rig, hash, 10, 7001);
    rig.advance(Duration::from_secs(70));
    assert!(pexes(&rig.sent(a)).is_empty());
}

/// A `get` of `info`'s hash, which the tracker does not know, with `peers`
/// as its x.pe; returns the control session and the dials made.
fn magnet_get(rig: &mut Rig, info: &Info, peers: &[&str]) -> (LinkId, Vec<(LinkId, SocketAddr)>) {
    let control = rig.e.control_opened(rig.now);
    let mut line = format!("get {}", crate::meta::info::to_hex(&info.info_hash));
    for p in peers {
        line.push_str(&format!(" peer {p}"));
    }
    line.push('\n');
    rig.input(control, line.as_bytes());
    let asked = rig.sent(rig.tracker);
    assert!(
        matches!(Request::decode(&asked), Ok(Some((Request::GetMeta(_), _)))),
        "the tracker is asked first"
    );
    let mut resp = Vec::new();
    Response::Error {
        code: ErrorCode::FILE_NOT_FOUND,
        message: "no such file".into(),
    }
    .encode(&mut resp);
    let tracker = rig.tracker;
    rig.input(tracker, &resp);
    let dials = rig
        .settle()
        .into_iter()
        .filter_map(|a| match a {
            Action::Dial { link, addr } => Some((link, addr)),
            _ => None,
        })
        .collect();
    (control, dials)
}

/// A dialed peer of a magnet answers: handshake, have all, ut_metadata.
fn seed_answers(rig: &mut Rig, link: LinkId, info: &Info, id: u8, size: u64) {
    rig.e.link_opened(rig.now, link);
    let hs = rig.sent(link);
    assert!(matches!(Handshake::decode(&hs), Ok(Some(_))));
    let mut reply = Vec::new();
    Handshake::new(info.info_hash, [id; 20]).encode(&mut reply);
    Message::HaveAll.encode(&mut reply);
    reply.extend(their_ext(6881, Some(size)));
    assert_eq!(rig.input(link, &reply), reply.len());
}

fn data(piece: u32, total: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    MetadataMsg::Data {
        piece,
        total_size: total as u64,
        data: bytes,
    }
    .encode(OUR_UT_METADATA, &mut out);
    out
}

#[test]
fn a_magnet_gets_the_dict_from_a_peer_then_downloads_from_it() {
    let mut rig = Rig::new(MemStorage::default());
    let (_, info) = file(40); // a dict of over 800 bytes: one piece
    let (control, dials) = magnet_get(&mut rig, &info, &[PEER]);
    assert_eq!(dials.len(), 1, "the x.pe peer is dialed");
    let link = dials[0].0;
    let size = info.bencoded.len();
    seed_answers(&mut rig, link, &info, 9, size as u64);
    let asked = metadata_msgs(&rig.sent(link));
    assert_eq!(asked, [MetadataMsg::Request(0)]);
    rig.input(link, &data(0, size, &info.bencoded));
    let after = rig.sent(link);
    let msgs: Vec<Message<'_>> = {
        let mut b = &after[..];
        let mut v = Vec::new();
        while let Ok(Some((m, n))) = Message::decode(b) {
            v.push(m);
            b = &b[n..];
        }
        v
    };
    assert!(msgs.contains(&Message::Interested), "{msgs:?}");
    assert!(
        rig.e.torrents.contains_key(&info.info_hash),
        "the download started"
    );
    assert!(rig.e.peers[&link].theirs.as_ref().unwrap().is_complete());
    assert!(!rig.e.is_magnet(&info.info_hash));
    let _ = control;
}

#[test]
fn a_wrong_dict_bans_its_sender_and_another_peer_is_asked() {
    let mut rig = Rig::new(MemStorage::default());
    let (_, info) = file(40);
    let (_, dials) = magnet_get(&mut rig, &info, &["10.0.0.7:6881", "10.0.0.8:6881"]);
    assert_eq!(dials.len(), 2);
    let size = info.bencoded.len();
    seed_answers(&mut rig, dials[0].0, &info, 7, size as u64);
    seed_answers(&mut rig, dials[1].0, &info, 8, size as u64);
    let liar = rig.e.magnet_source_link(&info.info_hash).unwrap();
    let honest = if liar == dials[0].0 {
        dials[1].0
    } else {
        dials[0].0
    };
    let mut wrong = info.bencoded.clone();
    wrong[size / 2] ^= 1;
    rig.input(liar, &data(0, size, &wrong));
    let actions = rig.settle();
    assert!(closes(&actions, liar), "the liar is dropped");
    rig.advance(Duration::from_millis(300));
    assert_eq!(metadata_msgs(&rig.sent(honest)), [MetadataMsg::Request(0)]);
    rig.input(honest, &data(0, size, &info.bencoded));
    assert!(rig.e.torrents.contains_key(&info.info_hash));
}

#[test]
fn a_dict_claimed_over_the_cap_is_never_asked_for_and_the_get_fails_in_time() {
    let mut rig = Rig::new(MemStorage::default());
    let (_, info) = file(4);
    let (control, dials) = magnet_get(&mut rig, &info, &[PEER]);
    seed_answers(&mut rig, dials[0].0, &info, 9, MAX_METADATA_SIZE + 1);
    assert!(metadata_msgs(&rig.sent(dials[0].0)).is_empty());
    let fetching = rig.e.status().fetching;
    assert_eq!(fetching.len(), 1, "status shows the fetch");
    assert_eq!((fetching[0].peers, fetching[0].known), (1, 1));
    rig.advance(magnet::MAGNET_PATIENCE + Duration::from_secs(1));
    let reply = String::from_utf8(rig.sent(control)).unwrap();
    assert!(reply.contains("not_found"), "{reply:?}");
    assert!(!rig.e.is_magnet(&info.info_hash));
    assert!(rig.e.status().fetching.is_empty());
}

#[test]
fn remove_cancels_a_download_still_fetching_its_dict() {
    let mut rig = Rig::new(MemStorage::default());
    let (_, info) = file(4);
    let (control, dials) = magnet_get(&mut rig, &info, &[PEER]);
    assert!(rig.e.is_magnet(&info.info_hash));
    let hex = crate::meta::info::to_hex(&info.info_hash);
    let remover = rig.e.control_opened(rig.now);
    rig.input(remover, format!("remove {hex}\n").as_bytes());
    let actions = rig.settle();
    let said = |link: LinkId| {
        let bytes = actions.iter().filter_map(|a| match a {
            Action::Send { link: l, bytes } if *l == link => Some(bytes.clone()),
            _ => None,
        });
        String::from_utf8(bytes.flatten().collect()).unwrap()
    };
    let reply = said(remover);
    assert!(
        reply.starts_with("{\"ok\":true,\"fetching\":{") && reply.contains(&hex),
        "{reply:?}"
    );
    let got = said(control);
    assert!(got.contains("\"removed\""), "the get learns why: {got:?}");
    assert!(!rig.e.is_magnet(&info.info_hash));
    assert!(rig.e.status().fetching.is_empty());
    // The peer being dialed connects after all: nothing wants it now.
    let link = dials[0].0;
    rig.e.link_opened(rig.now, link);
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, [7; 20]).encode(&mut hello);
    rig.input(link, &hello);
    assert!(closes(&rig.settle(), link), "the late session is closed");
}

#[test]
fn a_silent_peer_is_given_up_on_after_the_timeout() {
    let mut rig = Rig::new(MemStorage::default());
    let (_, info) = file(40);
    let (_, dials) = magnet_get(&mut rig, &info, &["10.0.0.7:6881", "10.0.0.8:6881"]);
    let size = info.bencoded.len() as u64;
    seed_answers(&mut rig, dials[0].0, &info, 7, size);
    seed_answers(&mut rig, dials[1].0, &info, 8, size);
    let first = rig.e.magnet_source_link(&info.info_hash).unwrap();
    rig.settle();
    let second = if first == dials[0].0 {
        dials[1].0
    } else {
        dials[0].0
    };
    rig.advance(metadata::METADATA_TIMEOUT + Duration::from_secs(1));
    assert_eq!(metadata_msgs(&rig.sent(second)), [MetadataMsg::Request(0)]);
}

#[test]
fn pex_goes_out_at_most_once_a_minute_with_what_changed() {
    let (mut rig, _, info) = Rig::seeder();
    let a = peer_with_ext(&mut rig, info.info_hash, 1, 7001);
    let _b = peer_with_ext(&mut rig, info.info_hash, 2, 7002);
    rig.sent(a);
    rig.advance(pex::PEX_FIRST + Duration::from_secs(1));
    let first = pexes(&rig.sent(a));
    let b_addr: SocketAddr = "10.0.0.9:7002".parse().unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].added.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        [b_addr]
    );
    let _c = peer_with_ext(&mut rig, info.info_hash, 3, 7003);
    rig.advance(Duration::from_secs(30));
    assert!(pexes(&rig.sent(a)).is_empty(), "not twice in a minute");
    rig.advance(Duration::from_secs(31));
    let next = pexes(&rig.sent(a));
    assert_eq!(next.len(), 1);
    let added: Vec<SocketAddr> = next[0].added.iter().map(|(a, _)| *a).collect();
    assert_eq!(added, ["10.0.0.9:7003".parse::<SocketAddr>().unwrap()]);
    assert!(next[0].dropped.is_empty());
}

#[test]
fn pex_peers_are_dialed_and_a_second_message_within_the_minute_is_ignored() {
    let mut rig = Rig::new(MemStorage::default());
    let (_, info) = file(40);
    let (_, dials) = magnet_get(&mut rig, &info, &[PEER]);
    let link = dials[0].0;
    let size = info.bencoded.len();
    seed_answers(&mut rig, link, &info, 9, size as u64);
    rig.sent(link);
    rig.input(link, &data(0, size, &info.bencoded));
    rig.settle();
    let pex = |addr: &str| {
        let mut out = Vec::new();
        Pex {
            added: vec![(addr.parse().unwrap(), 0)],
            dropped: Vec::new(),
        }
        .encode(OUR_UT_PEX, &mut out);
        out
    };
    let dialed = |rig: &mut Rig| -> Vec<SocketAddr> {
        rig.settle()
            .into_iter()
            .filter_map(|a| match a {
                Action::Dial { addr, .. } => Some(addr),
                _ => None,
            })
            .collect()
    };
    rig.input(link, &pex("10.0.0.20:6881"));
    assert_eq!(dialed(&mut rig), ["10.0.0.20:6881".parse().unwrap()]);
    rig.advance(Duration::from_secs(10));
    rig.input(link, &pex("10.0.0.21:6881"));
    assert!(!dialed(&mut rig).contains(&"10.0.0.21:6881".parse().unwrap()));
    rig.advance(pex::PEX_MIN_HEARD);
    rig.input(link, &pex("10.0.0.22:6881"));
    assert!(dialed(&mut rig).contains(&"10.0.0.22:6881".parse().unwrap()));
}
