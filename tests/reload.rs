//! SIGHUP re-reads the config file: what can change live does (logged),
//! what cannot is named, an invalid file changes nothing, and the daemon
//! keeps running either way (SIGHUP used to end it).

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

fn wait_log(what: &str, log: impl Fn() -> String) {
    wait_for(what, Duration::from_secs(10), || {
        log().contains(what).then_some(())
    });
}

#[test]
fn sighup_reloads_what_it_can_and_names_the_rest() {
    let tmp = TempDir::new("reload");
    let t = tracker(&[]);
    let conf = tmp.path().join("peerd.conf");
    std::fs::write(&conf, "log-level = info\nupload-slots = 4\n").unwrap();
    let conf_s = conf.to_str().unwrap();
    let mut p = spawn_peerd_with(t.addr, &tmp.subdir("p"), &[], &["--config", conf_s]);

    std::fs::write(
        &conf,
        "log-level = debug\nupload-slots = 2\nhash-threads = 1\n",
    )
    .unwrap();
    sighup(p.pid());
    wait_log("reload: log-level is now debug", || p.log());
    wait_log("reload: upload-slots is now 2", || p.log());
    wait_log(
        "reload: hash-threads changed, but takes effect only after a restart",
        || p.log(),
    );
    p.daemon.assert_running();

    std::fs::write(&conf, "no-such-setting = 1\n").unwrap();
    sighup(p.pid());
    wait_log("keeping the configuration in use", || p.log());
    p.daemon.assert_running();
    assert!(p.status().tracker_connected);
    tracker_reload(tmp.path());
}

fn tracker_reload(dir: &Path) {
    let conf = dir.join("trackerd.conf");
    std::fs::write(&conf, "log-level = info\n").unwrap();
    let mut t = tracker(&["--config", conf.to_str().unwrap()]);
    std::fs::write(&conf, "log-level = warn\nmax-files = 5\n").unwrap();
    sighup(t.pid());
    wait_log(
        "reload: max-files changed, but takes effect only after a restart",
        || t.log(),
    );
    t.assert_running();
}
