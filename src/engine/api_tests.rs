//! The engine's counters and API views: what `/metrics` and `/api/v1/`
//! report after real exchanges on the test rig of `tests.rs`.

use super::tests::{PEER, PIECE, Rig, closes, leecher_with_peer, piece_msg};
use super::*;
use crate::control::ControlRequest;

#[test]
fn a_download_is_counted_and_its_bytes_traced_to_their_source() {
    let (mut rig, control, link, bytes, blocks) = leecher_with_peer(MemStorage::default());
    for b in &blocks {
        rig.input(link, &piece_msg(&bytes, *b));
    }
    rig.assert_published(control, &bytes);
    rig.advance(Duration::from_secs(1));
    let m = rig.e.metrics(rig.now);
    assert_eq!(
        (m.pieces_verified, m.pieces_failed, m.peers_banned),
        (4, 0, 0)
    );
    assert_eq!(m.downloaded, bytes.len() as u64);
    assert_eq!(m.uploaded, 0);
    assert_eq!(m.files["seeding"], 1);
    assert_eq!((m.peer_sessions, m.connected_peers), (1, 1));
    assert_eq!(m.tracker_requests["have"], 4);
    assert!(m.tracker_connected);
    assert_eq!(m.by_file[0].downloaded, bytes.len() as u64);
    assert_eq!(m.uptime_secs, rig.now.as_secs_f64());

    let hash = m.by_file[0].info_hash;
    let d = rig.e.api_file(&hash).expect("the file");
    assert_eq!(d.have_bitfield, "f0");
    assert_eq!(d.availability, vec![1; 4]);
    assert_eq!(d.file.state, "seeding");
    assert_eq!(d.file.traffic.bytes_downloaded, bytes.len() as u64);
    assert_eq!(d.sources.len(), 1);
    assert_eq!(d.sources[0].addr, PEER);
    assert_eq!(d.sources[0].bytes, bytes.len() as u64);
    let p = &d.peers[0];
    assert_eq!((p.addr.as_str(), p.seed, p.incoming), (PEER, true, true));
    assert_eq!(p.bytes_received, bytes.len() as u64);
    assert_eq!(p.pieces, "f0");
    assert!(rig.e.api_file(&[0; 20]).is_none());
    let s = rig.e.api_status(rig.now);
    assert_eq!(s.files.len(), 1);
    assert_eq!(s.totals.bytes_downloaded, bytes.len() as u64);
    assert!(s.tracker.connected);
}

#[test]
fn corrupt_pieces_and_a_ban_are_counted() {
    let (mut rig, _, link, bytes, blocks) = leecher_with_peer(MemStorage::default());
    let bad: Vec<u8> = bytes.iter().map(|b| b ^ 0xff).collect();
    for b in blocks.iter().filter(|b| b.index < 2) {
        rig.input(link, &piece_msg(&bad, *b));
    }
    assert!(closes(&rig.settle(), link));
    let m = rig.e.metrics(rig.now);
    assert_eq!(
        (m.pieces_verified, m.pieces_failed, m.peers_banned),
        (0, 2, 1)
    );
    assert_eq!(m.downloaded, 2 * u64::from(PIECE));
    assert_eq!(m.files["downloading"], 1);
}

#[test]
fn api_requests_share_and_remove_as_control_requests_do() {
    let (bytes, _) = super::tests::file(4);
    let mut disk = MemStorage::default();
    disk.fs.files.insert("/data/f.bin".into(), bytes);
    let mut rig = Rig::new(disk);
    let share = ControlRequest::Share("/data/f.bin".into());
    assert_eq!(rig.e.api_request(rig.now, share), None, "accepted: hashing");
    rig.settle();
    assert_eq!(rig.e.metrics(rig.now).files["seeding"], 1);
    assert_eq!(rig.e.metrics(rig.now).control_sessions, 0, "answered, gone");

    let missing = ControlRequest::Share("/data/nope".into());
    assert!(matches!(
        rig.e.api_request(rig.now, missing),
        Some(ApiReply::Failed { .. })
    ));
    let remove = ControlRequest::Remove {
        target: "f.bin".into(),
        delete: false,
    };
    match rig.e.api_request(rig.now, remove) {
        Some(ApiReply::Done(v)) => assert_eq!(v["file"]["name"], "f.bin"),
        other => panic!("{other:?}"),
    }
    rig.settle();
    let m = rig.e.metrics(rig.now);
    assert_eq!(m.files.values().sum::<usize>(), 0);
    assert_eq!((m.control_sessions, m.tracker_requests["leave"]), (0, 1));
    let again = ControlRequest::Remove {
        target: "f.bin".into(),
        delete: false,
    };
    assert!(matches!(
        rig.e.api_request(rig.now, again),
        Some(ApiReply::Failed {
            code: crate::control::code::NOT_FOUND,
            ..
        })
    ));
}

#[test]
fn rates_come_from_sampled_counters() {
    let (mut rig, _, link, bytes, blocks) = leecher_with_peer(MemStorage::default());
    let (first, rest) = blocks.split_at(blocks.len() / 2);
    for b in first {
        rig.input(link, &piece_msg(&bytes, *b));
    }
    rig.settle();
    rig.advance(Duration::from_secs(1));
    for b in rest {
        rig.input(link, &piece_msg(&bytes, *b));
    }
    rig.settle();
    rig.advance(Duration::from_millis(1500));
    let hash = rig.e.metrics(rig.now).by_file[0].info_hash;
    let d = rig.e.api_file(&hash).unwrap();
    let received: u64 = rest.iter().map(|b| u64::from(b.length)).sum();
    let p = &d.peers[0];
    assert_eq!(p.rate_up, 0);
    assert!(
        p.rate_down > 0 && p.rate_down <= received,
        "{} of {received}",
        p.rate_down
    );
    assert!(d.file.traffic.rate_down > 0);
}
