//! Daemon settings from three sources, strongest first: command-line flags,
//! environment variables (`PREFIX_NAME`, e.g. `STA_TRACKERD_LISTEN`), and a
//! config file of `name = value` lines (`#` starts a comment). Each daemon
//! declares its setting names; anything else is an error, not a silent typo.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// One daemon's resolved settings.
pub struct Settings {
    values: HashMap<&'static str, (String, &'static str)>,
}

impl Settings {
    /// Resolves every name in `names` from the flags in `args` (consumed),
    /// the environment and `--config FILE`. Leftover arguments are an error.
    pub fn load(
        mut args: pico_args::Arguments,
        env_prefix: &str,
        names: &[&'static str],
    ) -> Result<Settings, ConfigError> {
        let mut values = HashMap::new();
        let config: Option<String> = args
            .opt_value_from_str("--config")
            .map_err(|e| ConfigError(format!("--config: {e}")))?;
        if let Some(path) = config {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("cannot read config file {path}: {e}")))?;
            for (name, value) in
                parse_file(&text, names).map_err(|e| ConfigError(format!("{path}: {e}")))?
            {
                values.insert(name, (value, "config file"));
            }
        }
        for &name in names {
            let var = format!("{env_prefix}_{}", name.to_uppercase().replace('-', "_"));
            if let Ok(value) = std::env::var(&var) {
                values.insert(name, (value, "environment"));
            }
        }
        for &name in names {
            let flag = format!("--{name}");
            let flag: &'static str = Box::leak(flag.into_boxed_str());
            let found: Option<String> = args
                .opt_value_from_str(flag)
                .map_err(|e| ConfigError(format!("{flag}: {e}")))?;
            if let Some(value) = found {
                values.insert(name, (value, "command line"));
            }
        }
        let rest = args.finish();
        if let Some(first) = rest.first() {
            return Err(ConfigError(format!(
                "unexpected argument {}; see --help",
                first.to_string_lossy()
            )));
        }
        Ok(Settings { values })
    }

    /// The value of `name` parsed as `T`, or `default` when unset.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(default),
            Some((raw, from)) => raw
                .trim()
                .parse()
                .map_err(|e| ConfigError(format!("{name} = {raw:?} (from the {from}): {e}"))),
        }
    }
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

/// Sets up logging to stderr at `level` (error, warn, info, debug, trace).
pub fn init_logging(level: &str) -> Result<(), ConfigError> {
    let filter: log::LevelFilter = level.parse().map_err(|_| {
        ConfigError(format!(
            "log level {level:?}: use error, warn, info, debug or trace"
        ))
    })?;
    let config = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .build();
    simplelog::WriteLogger::init(filter, config, std::io::stderr())
        .map_err(|e| ConfigError(format!("cannot start logging: {e}")))
}

/// The `main` of a daemon: `--help` prints `help`; otherwise `run` gets the
/// arguments, and an error is printed as `NAME: ERROR` with exit status 1.
pub fn daemon_main(
    name: &str,
    help: &str,
    run: impl FnOnce(pico_args::Arguments) -> Result<(), Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        print!("{help}");
        return std::process::ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
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
}
