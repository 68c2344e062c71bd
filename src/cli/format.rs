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

#[cfg(test)]
mod tests {
    use super::*;

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
