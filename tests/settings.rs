//! The daemons' settings as users meet them: README.md's tables, `--help`,
//! the three sources and the refusal of names no daemon declares.

use sta::config::{Spec, peerd, trackerd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SPECS: [&Spec; 2] = [&trackerd::SPEC, &peerd::SPEC];

const REGENERATE: &str = "STA_UPDATE_README=1 cargo test --test settings";

/// The byte range of `program`'s table in `readme`, between its markers.
fn table_range(readme: &str, program: &str) -> std::ops::Range<usize> {
    let start = format!("<!-- settings:{program} -->\n");
    let end = format!("<!-- /settings:{program} -->");
    let Some(from) = readme.find(&start).map(|i| i + start.len()) else {
        panic!("README.md lacks the line {start:?}");
    };
    let Some(to) = readme[from..].find(&end).map(|i| from + i) else {
        panic!("README.md lacks {end:?} after {start:?}");
    };
    from..to
}

#[test]
fn readme_tables_match_the_declarations() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("read README.md");
    let mut updated = readme.clone();
    let mut stale = Vec::new();
    for spec in SPECS {
        let range = table_range(&updated, spec.program);
        let declared = spec.markdown_table();
        if updated[range.clone()] != declared {
            stale.push(format!(
                "{}:\n--- README.md\n{}--- declared\n{declared}",
                spec.program,
                &updated[range.clone()]
            ));
            updated.replace_range(range, &declared);
        }
    }
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("STA_UPDATE_README").is_some() {
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    panic!(
        "README.md's settings tables differ from src/config/{{peerd,trackerd}}.rs; \
         regenerate them with `{REGENERATE}`\n{}",
        stale.join("\n")
    );
}

fn bin(spec: &Spec) -> &'static str {
    match spec.program {
        "sta-peerd" => env!("CARGO_BIN_EXE_sta-peerd"),
        _ => env!("CARGO_BIN_EXE_sta-trackerd"),
    }
}

fn run(spec: &Spec, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin(spec))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run the daemon")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config file holding `text`, removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(tag: &str, text: &str) -> ConfigFile {
        let path =
            std::env::temp_dir().join(format!("sta-settings-{}-{tag}.conf", std::process::id()));
        std::fs::write(&path, text).expect("write config file");
        ConfigFile(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("temp paths are UTF-8 here")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn help_lists_the_declared_options() {
    for spec in SPECS {
        let o = run(spec, &["--help"], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(help.starts_with(&format!("{}: ", spec.program)), "{help}");
        assert!(
            help.contains(&format!("\n\n{}\n", spec.options_help())),
            "{help}"
        );
    }
}

/// Names stay as they were: a typo anywhere but the environment stops the
/// daemon, naming what it knows.
#[test]
fn unknown_names_are_refused() {
    let o = run(&trackerd::SPEC, &["--lisen", "127.0.0.1:0"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "sta-trackerd: unexpected argument --lisen; see --help\n"
    );
    let file = ConfigFile::new("unknown", "# ok\nlisten = 127.0.0.1:0\nbogus = 1\n");
    let o = run(&trackerd::SPEC, &["--config", file.arg()], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with(
            ": line 3: unknown setting 'bogus' (known: listen, log-level, max-connections, \
             idle-timeout, max-files-per-peer, max-peers-per-answer, max-files, listen-v6, udp-listen, \
             http-listen, announce-interval, max-bt-peers, http, api-token-file, max-sessions-per-ip, \
             ip-request-rate, ip-request-burst, ban-file, tls-cert, tls-key, tls-ca)\n"
        ),
        "{}",
        stderr(&o)
    );
    // --share is a flag only.
    let file = ConfigFile::new("share", "share = x\n");
    let o = run(&peerd::SPEC, &["--config", file.arg()], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with(
            ": line 1: unknown setting 'share' (known: tracker, listen, listen-v6, dir, control, \
             piece-size, max-peers, upload-slots, hash-threads, max-upload-rate, \
             max-download-rate, log-level, http, api-token-file, private-shares, dht, dht-bootstrap, \
             tls-cert, tls-key, tls-ca)\n"
        ),
        "{}",
        stderr(&o)
    );
    // Rates are bytes per second; a unit of bits is refused, from any source.
    let o = run(
        &peerd::SPEC,
        &[],
        &[("STA_PEERD_MAX_UPLOAD_RATE", "10Mbit")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("max-upload-rate = \"10Mbit\" (from the environment)")
            && stderr(&o).contains("bytes per second (not bits)"),
        "{}",
        stderr(&o)
    );
}

/// The error names the value that won: flag over environment over file.
#[test]
fn flags_beat_the_environment_which_beats_the_config_file() {
    let file = ConfigFile::new("order", "idle-timeout = a\n");
    let error = |flags: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["--config", file.arg(), "--listen", "127.0.0.1:0"];
        args.extend_from_slice(flags);
        let o = run(&trackerd::SPEC, &args, env);
        assert_eq!(o.status.code(), Some(1));
        stderr(&o)
    };
    let env = [("STA_TRACKERD_IDLE_TIMEOUT", "b")];
    let message = |winner: &str| {
        format!("sta-trackerd: idle-timeout = {winner}: invalid digit found in string\n")
    };
    assert_eq!(
        error(&["--idle-timeout", "c"], &env),
        message("\"c\" (from the command line)")
    );
    assert_eq!(error(&[], &env), message("\"b\" (from the environment)"));
    assert_eq!(error(&[], &[]), message("\"a\" (from the config file)"));
}
