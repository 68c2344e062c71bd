//! Daemon settings from three sources, strongest first: command-line flags,
//! environment variables (`PREFIX_NAME`, e.g. `STA_TRACKERD_LISTEN`), and a
//! config file of `name = value` lines (`#` starts a comment). Each daemon
//! declares its settings once ([`peerd`], [`trackerd`]); any other name is an
//! error, not a silent typo.

pub mod peerd;
mod setting;
pub mod trackerd;

pub use setting::{Setting, Spec, Unset};

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Where a daemon's other settings come from; `Settings::load` reads it.
pub const CONFIG: Setting = Setting::new(
    "--config",
    "FILE",
    Unset::Nothing,
    "`name = value` lines; flags and environment win",
)
.flag_only();

/// The IPv6 twin of `--listen` (see [`v6_twin`]).
pub const LISTEN_V6: Setting = Setting::new(
    "--listen-v6",
    "ADDR:PORT",
    Unset::Computed(
        "`[::]` on the port of --listen when --listen is `0.0.0.0` (a failed bind of \
         that default only logs a warning), else off",
    ),
    "also listen here, a second socket, IPv6 only (TCP, and UDP: the tracker's BitTorrent UDP if on, sta-peerd's uTP refusals), or `off`",
);

/// This host's TLS certificate; with [`TLS_KEY`] and [`TLS_CA`], STA
/// tracker sessions and peer links are mutual TLS 1.3 (spec/tls.md).
pub const TLS_CERT: Setting = Setting::new(
    "--tls-cert",
    "FILE",
    Unset::Nothing,
    "this host's certificate (PEM, from `sta ca issue`); with --tls-key and --tls-ca, mutual TLS 1.3 only: sta-trackerd serves nothing else on --listen; sta-peerd dials its tracker so, and its peer links (--listen too) need a certificate for the file's name or `*`; all three re-read on SIGHUP",
);
pub const TLS_KEY: Setting = Setting::new(
    "--tls-key",
    "FILE",
    Unset::Nothing,
    "the private key of --tls-cert (PEM)",
);
pub const TLS_CA: Setting = Setting::new(
    "--tls-ca",
    "FILE",
    Unset::Nothing,
    "the swarm's CA certificate (PEM, `sta ca init`): the other side's certificate must be signed by it",
);

/// The three TLS settings, all or none (see [`crate::tls::files`]).
pub fn tls_files(s: &Settings) -> Result<Option<crate::tls::files::TlsFiles>, ConfigError> {
    crate::tls::files::TlsFiles::from_settings(s.opt(&TLS_CERT)?, s.opt(&TLS_KEY)?, s.opt(&TLS_CA)?)
        .map_err(ConfigError)
}

/// The monitoring and API listener (spec/http.md).
pub const HTTP: Setting = Setting::new(
    "--http",
    "ADDR:PORT",
    Unset::Value("off"),
    "serve /metrics and the /api/v1 JSON API over HTTP (a bare PORT means 127.0.0.1:PORT), or `off`",
);

/// The levels [`init_logging`] takes.
pub const LOG_LEVEL: Setting = Setting::new(
    "--log-level",
    "LEVEL",
    Unset::Value("info"),
    "error, warn, info, debug or trace",
);

#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// An address setting that may be off (`off` or empty).
pub struct OptAddr(pub Option<SocketAddr>);

impl FromStr for OptAddr {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<OptAddr, Self::Err> {
        match s {
            "" | "off" => Ok(OptAddr(None)),
            _ => s.parse().map(|a| OptAddr(Some(a))),
        }
    }
}

/// Where the IPv6 twin of a listener bound at `bound` goes: `setting` if
/// given (`None` inside: off), else `[::]` on the same port when `bound` is
/// the IPv4 wildcard. The flag says it is that default, whose failure to
/// bind (a host without IPv6) is only worth a warning.
pub fn v6_twin(
    setting: Option<Option<SocketAddr>>,
    bound: SocketAddr,
) -> Option<(SocketAddr, bool)> {
    match setting {
        Some(addr) => addr.map(|a| (a, false)),
        None if bound.ip() == std::net::Ipv4Addr::UNSPECIFIED => Some((
            SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), bound.port()),
            true,
        )),
        None => None,
    }
}

/// One daemon's resolved settings.
pub struct Settings {
    values: HashMap<&'static str, (String, &'static str)>,
    /// The names `load` looked for; asking for another is a bug.
    known: Vec<&'static str>,
    /// What a reload reads again: the config file, under the command
    /// line's values (which cannot change).
    config: Option<String>,
    command_line: HashMap<&'static str, String>,
}

impl Settings {
    /// Resolves every setting of `spec` that is not flag-only from the
    /// flags in `args` (consumed), the environment and `--config FILE`.
    /// Leftover arguments are an error.
    pub fn load(mut args: pico_args::Arguments, spec: &Spec) -> Result<Settings, ConfigError> {
        let config: Option<String> = args
            .opt_value_from_str(CONFIG.flag)
            .map_err(|e| ConfigError(format!("{}: {e}", CONFIG.flag)))?;
        let mut command_line = HashMap::new();
        for setting in spec.twinned() {
            let found: Option<String> = match setting.repeatable {
                true => {
                    let all: Vec<String> = args
                        .values_from_str(setting.flag)
                        .map_err(|e| ConfigError(format!("{}: {e}", setting.flag)))?;
                    (!all.is_empty()).then(|| all.join(","))
                }
                false => args
                    .opt_value_from_str(setting.flag)
                    .map_err(|e| ConfigError(format!("{}: {e}", setting.flag)))?,
            };
            if let Some(value) = found {
                command_line.insert(setting.name(), value);
            }
        }
        let rest = args.finish();
        if let Some(first) = rest.first() {
            return Err(ConfigError(format!(
                "unexpected argument {}; see --help",
                first.to_string_lossy()
            )));
        }
        Settings::resolve(spec, config, command_line)
    }

    /// The settings anew from the same command line, the environment and
    /// the config file as it is now (for SIGHUP).
    pub fn reload(&self, spec: &Spec) -> Result<Settings, ConfigError> {
        Settings::resolve(spec, self.config.clone(), self.command_line.clone())
    }

    fn resolve(
        spec: &Spec,
        config: Option<String>,
        command_line: HashMap<&'static str, String>,
    ) -> Result<Settings, ConfigError> {
        let known: Vec<&'static str> = spec.twinned().map(Setting::name).collect();
        let repeatable: Vec<&'static str> = spec
            .twinned()
            .filter(|s| s.repeatable)
            .map(Setting::name)
            .collect();
        let mut values: HashMap<&'static str, (String, &'static str)> = HashMap::new();
        if let Some(path) = &config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read config file {path}: {e}")))?;
            for (name, value) in
                parse_file(&text, &known).map_err(|e| ConfigError(format!("{path}: {e}")))?
            {
                match values.get_mut(name) {
                    Some((known, _)) if repeatable.contains(&name) => {
                        known.push(',');
                        known.push_str(&value);
                    }
                    _ => {
                        values.insert(name, (value, "config file"));
                    }
                }
            }
        }
        for setting in spec.twinned() {
            if let Ok(value) = std::env::var(setting.env_var(spec.env_prefix)) {
                values.insert(setting.name(), (value, "environment"));
            }
        }
        for (name, value) in &command_line {
            values.insert(*name, (value.clone(), "command line"));
        }
        Ok(Settings {
            values,
            known,
            config,
            command_line,
        })
    }

    /// The raw value of the setting named `name`, if set.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(v, _)| v.as_str())
    }

    /// The names of the settings whose value differs in `newer`.
    pub fn changed(&self, newer: &Settings) -> Vec<&'static str> {
        let raw = |s: &Settings, n: &str| s.values.get(n).map(|(v, _)| v.clone());
        self.known
            .iter()
            .copied()
            .filter(|n| raw(self, n) != raw(newer, n))
            .collect()
    }

    /// The value of `setting` parsed as `T`, or its declared default when
    /// unset.
    pub fn get<T: FromStr>(&self, setting: &Setting) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        let name = self.check(setting)?;
        match (self.values.get(name), setting.unset) {
            (Some((raw, from)), _) => parse(name, raw, from),
            (None, Unset::Value(default)) => parse(name, default, "default"),
            (None, _) => Err(ConfigError(format!(
                "{name} has no default value to get (a bug: use Settings::opt)"
            ))),
        }
    }

    /// The value of `setting` parsed as `T`, or `None` when unset: for a
    /// setting whose default the daemon computes.
    pub fn opt<T: FromStr>(&self, setting: &Setting) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        let name = self.check(setting)?;
        if let Unset::Value(_) = setting.unset {
            return Err(ConfigError(format!(
                "{name} has a default value (a bug: use Settings::get)"
            )));
        }
        self.values
            .get(name)
            .map(|(raw, from)| parse(name, raw, from))
            .transpose()
    }

    fn check(&self, setting: &Setting) -> Result<&'static str, ConfigError> {
        let name = setting.name();
        if self.known.contains(&name) {
            Ok(name)
        } else {
            Err(ConfigError(format!(
                "{name} is not among this daemon's settings (a bug: add it to its SPEC)"
            )))
        }
    }
}

fn parse<T: FromStr>(name: &str, raw: &str, from: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    raw.trim()
        .parse()
        .map_err(|e| ConfigError(format!("{name} = {raw:?} (from the {from}): {e}")))
}

fn parse_file(text: &str, names: &[&'static str]) -> Result<Vec<(&'static str, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected `name = value`", n + 1));
        };
        let key = key.trim();
        let Some(&name) = names.iter().find(|&&k| k == key) else {
            return Err(format!(
                "line {}: unknown setting '{key}' (known: {})",
                n + 1,
                names.join(", ")
            ));
        };
        out.push((name, value.trim().trim_matches('"').to_owned()));
    }
    Ok(out)
}

/// The API token: the first line of `file` when given, else the value of
/// the environment variable `env_var`, else none (write requests are then
/// refused with 403).
pub fn load_api_token(
    file: Option<std::path::PathBuf>,
    env_var: &str,
) -> Result<Option<String>, ConfigError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("api-token-file {}: {e}", path.display())))?;
        return crate::http::auth::token_from_file_text(&text)
            .map(Some)
            .map_err(|e| ConfigError(format!("api-token-file {}: {e}", path.display())));
    }
    match std::env::var(env_var) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
        Ok(_) => Err(ConfigError(format!("{env_var} is set but empty"))),
        Err(_) => Ok(None),
    }
}

/// Sets up logging to stderr at `level` (error, warn, info, debug, trace).
pub fn init_logging(level: &str) -> Result<(), ConfigError> {
    let filter = log_level(level)?;
    let config = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .build();
    // The logger lets everything through; `log::set_max_level` filters,
    // so a reload can raise the level as well as lower it.
    simplelog::WriteLogger::init(log::LevelFilter::Trace, config, std::io::stderr())
        .map_err(|e| ConfigError(format!("cannot start logging: {e}")))?;
    log::set_max_level(filter);
    Ok(())
}

/// Changes the log level of a running daemon.
pub fn set_log_level(level: &str) -> Result<(), ConfigError> {
    log::set_max_level(log_level(level)?);
    Ok(())
}

fn log_level(level: &str) -> Result<log::LevelFilter, ConfigError> {
    level.parse().map_err(|_| {
        ConfigError(format!(
            "log level {level:?}: use error, warn, info, debug or trace"
        ))
    })
}

/// The `main` of a daemon: `--help` prints `about` (description and usage),
/// the OPTIONS made from `spec` and `trailer`; otherwise `run` gets the
/// arguments, and an error is printed as `PROGRAM: ERROR` with exit status 1.
pub fn daemon_main(
    spec: &Spec,
    about: &str,
    trailer: &str,
    run: impl FnOnce(pico_args::Arguments) -> Result<(), Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        print!("{about}\n{}\n{trailer}", spec.options_help());
        return std::process::ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e}", spec.program);
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_are_checked() {
        let names = ["listen", "log-level"];
        let parsed = parse_file(
            "# c\nlisten = 1.2.3.4:5 # here\n\nlog-level=\"debug\"\n",
            &names,
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ("listen", "1.2.3.4:5".into()),
                ("log-level", "debug".into())
            ]
        );
        assert!(
            parse_file("lisen = x", &names)
                .unwrap_err()
                .contains("unknown setting")
        );
        assert!(parse_file("listen", &names).unwrap_err().contains("line 1"));
    }

    const N: Setting = Setting::new("--n", "N", Unset::Value("7"), "n");
    const AUTO: Setting = Setting::new("--auto", "N", Unset::Computed("cores"), "auto");
    const ONLY_FLAG: Setting = Setting::new("--only", "X", Unset::Nothing, "only").flag_only();
    const MANY: Setting = Setting::new("--many", "A", Unset::Value("a"), "many").repeatable();
    // No environment sets variables with this prefix, so only flags count.
    const SPEC: Spec = Spec {
        program: "test",
        env_prefix: "STA_CONFIG_UNIT_TEST_UNSET",
        settings: &[N, AUTO, ONLY_FLAG, MANY],
    };

    fn load(args: &[&str]) -> Result<Settings, ConfigError> {
        Settings::load(
            pico_args::Arguments::from_vec(args.iter().map(Into::into).collect()),
            &SPEC,
        )
    }

    #[test]
    fn unset_settings_take_their_declared_default() {
        let s = load(&[]).unwrap();
        assert_eq!(s.get::<u32>(&N).unwrap(), 7);
        assert_eq!(s.opt::<u32>(&AUTO).unwrap(), None);
        let s = load(&["--n", " 8 ", "--auto", "3"]).unwrap();
        assert_eq!(s.get::<u32>(&N).unwrap(), 8);
        assert_eq!(s.opt::<u32>(&AUTO).unwrap(), Some(3));
        let e = load(&["--n", "x"]).unwrap().get::<u32>(&N).unwrap_err();
        assert_eq!(
            e.0,
            "n = \"x\" (from the command line): invalid digit found in string"
        );
    }

    #[test]
    fn a_repeatable_setting_joins_its_values_with_commas() {
        let s = load(&["--many", "x:1", "--n", "2", "--many", "y:2"]).unwrap();
        assert_eq!(s.get::<String>(&MANY).unwrap(), "x:1,y:2");
        assert_eq!(load(&[]).unwrap().get::<String>(&MANY).unwrap(), "a");
        let dir = std::env::temp_dir().join(format!("sta-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.conf");
        std::fs::write(&file, "many = p:1\nn = 3\nmany = q:2\nn = 4\n").unwrap();
        let s = load(&["--config", file.to_str().unwrap()]).unwrap();
        assert_eq!(s.get::<String>(&MANY).unwrap(), "p:1,q:2");
        assert_eq!(s.get::<u32>(&N).unwrap(), 4, "others: the last line wins");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flag_only_settings_are_left_to_the_caller() {
        let e = load(&["--only", "x"]).err().unwrap();
        assert_eq!(e.0, "unexpected argument --only; see --help");
    }

    /// Asking for a setting the wrong way is a bug in the daemon, reported
    /// as an error rather than a panic or a silently wrong value.
    #[test]
    fn misuse_is_an_error() {
        let s = load(&[]).unwrap();
        assert!(
            s.get::<u32>(&AUTO)
                .unwrap_err()
                .0
                .contains("use Settings::opt")
        );
        assert!(
            s.opt::<u32>(&N)
                .unwrap_err()
                .0
                .contains("use Settings::get")
        );
        assert!(
            s.get::<u32>(&ONLY_FLAG)
                .unwrap_err()
                .0
                .contains("not among")
        );
    }
}
