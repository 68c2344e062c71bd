//! A daemon setting declared once, and what is made from that declaration:
//! its environment variable and config file key, the OPTIONS part of the
//! daemon's `--help`, and the table of settings in README.md. Keeping all of
//! them generated is what stops a default or a name drifting between them.

/// What a setting is when no flag, variable or config line gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unset {
    /// This text, parsed exactly as a user's value would be, so the default
    /// shown in help is the default used.
    Value(&'static str),
    /// Worked out by the daemon at start (from other settings or the
    /// machine); the text tells people how.
    Computed(&'static str),
    /// Nothing: a flag that only matters when given.
    Nothing,
}

/// One setting of a daemon.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// `--max-peers`. Without the dashes it is the config file key; in
    /// capitals with `_` for `-`, the end of the environment variable.
    pub flag: &'static str,
    /// The value's placeholder in help: `ADDR:PORT`, `N`.
    pub value: &'static str,
    pub unset: Unset,
    /// What it does, shared by `--help` and README.md: no line breaks.
    pub help: &'static str,
    /// Only a flag, with no environment variable and no config file key
    /// (`--config` itself, or a repeatable flag like `--share`).
    pub flag_only: bool,
    /// May be given more than once (flag, config file line): the values
    /// are joined with commas, as the environment variable writes them.
    pub repeatable: bool,
}

impl Setting {
    pub const fn new(
        flag: &'static str,
        value: &'static str,
        unset: Unset,
        help: &'static str,
    ) -> Setting {
        Setting {
            flag,
            value,
            unset,
            help,
            flag_only: false,
            repeatable: false,
        }
    }

    pub const fn repeatable(self) -> Setting {
        Setting {
            repeatable: true,
            ..self
        }
    }

    pub const fn flag_only(self) -> Setting {
        Setting {
            flag_only: true,
            ..self
        }
    }

    /// The name in messages and the config file key: `max-peers`.
    pub fn name(&self) -> &'static str {
        self.flag.trim_start_matches('-')
    }

    /// `STA_PEERD_MAX_PEERS` for `--max-peers` with prefix `STA_PEERD`.
    pub fn env_var(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.name().to_uppercase().replace('-', "_"))
    }
}

/// A daemon's settings, in the order help and README list them.
pub struct Spec {
    pub program: &'static str,
    pub env_prefix: &'static str,
    pub settings: &'static [Setting],
}

/// Longest line of the OPTIONS part of `--help`: an 80-column terminal
/// shows it without wrapping it again.
const HELP_WIDTH: usize = 79;

impl Spec {
    /// The settings that the environment and the config file may also give.
    pub fn twinned(&self) -> impl Iterator<Item = &'static Setting> {
        self.settings.iter().filter(|s| !s.flag_only)
    }

    /// The OPTIONS part of `--help`, heading included.
    pub fn options_help(&self) -> String {
        let mut rows: Vec<(String, String)> = self
            .settings
            .iter()
            .map(|s| {
                let text = match s.unset {
                    // A no-break space keeps `[default:` on the line of the
                    // value it introduces; wrapping turns it back.
                    Unset::Value(v) | Unset::Computed(v) => {
                        format!("{} [default:\u{a0}{v}]", s.help)
                    }
                    Unset::Nothing => s.help.to_owned(),
                };
                (format!("{} {}", s.flag, s.value), text)
            })
            .collect();
        rows.push(("-h, --help".into(), "print this help".into()));
        let column = rows.iter().map(|r| r.0.len()).max().unwrap_or(0) + 2;
        let mut out = format!(
            "OPTIONS (each also settable as {}_<NAME> or in the config file):\n",
            self.env_prefix
        );
        for (left, text) in &rows {
            for (i, line) in wrap(text, HELP_WIDTH - 4 - column).iter().enumerate() {
                let left = if i == 0 { left.as_str() } else { "" };
                out.push_str(&format!("    {left:column$}{line}\n"));
            }
        }
        out
    }

    /// README.md's table of these settings, one line a row.
    pub fn markdown_table(&self) -> String {
        let mut out = String::from("| flag | default | meaning |\n|---|---|---|\n");
        let mut row = |cells: [&str; 3]| {
            out.push('|');
            for cell in cells {
                let cell = cell.replace('|', "\\|");
                out.push_str(&if cell.is_empty() {
                    " |".to_owned()
                } else {
                    format!(" {cell} |")
                });
            }
            out.push('\n');
        };
        for s in self.settings {
            let default = match s.unset {
                Unset::Value(v) => format!("`{v}`"),
                Unset::Computed(how) => how.to_owned(),
                Unset::Nothing => String::new(),
            };
            row([&format!("`{} {}`", s.flag, s.value), &default, s.help]);
        }
        row(["`-h`, `--help`", "", "print the help"]);
        out
    }
}

/// Greedy word wrap into lines of at most `width` characters (a longer word
/// gets a line of its own), splitting only at plain spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
        .into_iter()
        .map(|l| l.replace('\u{a0}', " "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{peerd, trackerd};
    use std::collections::HashSet;

    #[test]
    fn env_names_follow_the_flag() {
        assert_eq!(peerd::MAX_PEERS.name(), "max-peers");
        assert_eq!(peerd::MAX_PEERS.env_var("STA_PEERD"), "STA_PEERD_MAX_PEERS");
    }

    #[test]
    fn declarations_are_well_formed() {
        for spec in [&peerd::SPEC, &trackerd::SPEC] {
            let mut names = HashSet::new();
            for s in spec.settings {
                let name = s.name();
                assert!(s.flag.starts_with("--"), "{}", s.flag);
                assert!(
                    !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{name}"
                );
                assert!(names.insert(name), "{} declares {name} twice", spec.program);
                assert!(!s.help.contains('\n'), "{name}: help has a line break");
            }
            for line in spec.options_help().lines() {
                assert!(line.chars().count() <= HELP_WIDTH, "too long: {line}");
            }
        }
    }

    #[test]
    fn defaults_stay_with_their_value_when_wrapped() {
        assert_eq!(
            wrap("a bb [default:\u{a0}ccc]", 8),
            vec!["a bb", "[default: ccc]"]
        );
        assert_eq!(wrap("", 5), vec![""]);
    }

    #[test]
    fn markdown_rows_escape_pipes_and_leave_no_default_empty() {
        const SPEC: Spec = Spec {
            program: "x",
            env_prefix: "X",
            settings: &[
                Setting::new("--a", "N", Unset::Value("1"), "one | two"),
                Setting::new("--b", "F", Unset::Nothing, "bee").flag_only(),
            ],
        };
        assert_eq!(
            SPEC.markdown_table(),
            "| flag | default | meaning |\n|---|---|---|\n\
             | `--a N` | `1` | one \\| two |\n\
             | `--b F` | | bee |\n\
             | `-h`, `--help` | | print the help |\n"
        );
        assert_eq!(SPEC.twinned().map(Setting::name).collect::<Vec<_>>(), ["a"]);
    }
}
