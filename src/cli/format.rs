//! Text formatting for the terminal: sizes, durations, tables, and text
//! from the network made safe to print.

use std::path::Path;

/// Decimal units, one decimal: `999 B`, `1.5 kB`, `123.4 MB`, `4.7 GB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `m:ss`, or `h:mm:ss` from an hour on.
pub fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Text from the network, safe to print on a terminal: control and
/// bidirectional-override characters become `?`.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi { '?' } else { c }
        })
        .collect()
}

/// A path as a shell word, quoted when it needs to be.
pub fn shell_word(p: &Path) -> String {
    let s = p.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Columns padded to their widest cell (right-aligned where `right`), two
/// spaces apart; the last column is not padded.
pub fn table(headers: &[&str], right: &[bool], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header_row).chain(&rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            if i == last {
                if right[i] {
                    text.push_str(&pad);
                }
                text.push_str(cell);
            } else if right[i] {
                text.push_str(&pad);
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&pad);
            }
        }
        text.push('\n');
    }
    text
}

/// `1048576`, `512K`, `64M`, `1G` (also `64MiB`), in bytes; at least 1.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("size '{text}': expected bytes or a number with K, M or G, e.g. 64M");
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return Err(bad()),
    };
    match n.checked_mul(1 << shift) {
        Some(0) => Err(format!("size '{text}': the file must have at least 1 byte")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("size '{text}' is too large")),
    }
}

/// `256 MiB`, `1 GiB`, `1000 bytes`: the size as the user would write it.
pub fn size_text(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    match n {
        1 => "1 byte".to_owned(),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64mib"), Ok(64 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        for bad in ["", "M", "1.5G", "-1", "64MB", "1T", "64 M", "0", "0M"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("99999999999999999G").is_err());
        assert_eq!(size_text(256 << 20), "256 MiB");
        assert_eq!(size_text(1 << 30), "1 GiB");
        assert_eq!(size_text(1000), "1000 bytes");
    }

    #[test]
    fn formats() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(123_400_000), "123.4 MB");
        assert_eq!(human_bytes(999_999_999), "1.0 GB");
        assert_eq!(human_bytes(u64::MAX), "18.4 EB");
        assert_eq!(clock(12), "0:12");
        assert_eq!(clock(3599), "59:59");
        assert_eq!(clock(3600), "1:00:00");
        assert_eq!(clean("a\u{1b}[31mb\u{202e}c"), "a?[31mb?c");
        assert_eq!(shell_word(Path::new("/srv/sta")), "/srv/sta");
        assert_eq!(shell_word(Path::new("/it's here")), r"'/it'\''s here'");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME", "SIZE", "HASH"],
            &[false, true, false],
            vec![
                vec!["a".into(), "1.0 kB".into(), "x".into()],
                vec!["long name".into(), "5 B".into(), "y".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME         SIZE  HASH\na          1.0 kB  x\nlong name     5 B  y\n"
        );
    }
}
