//! The figures of each run, and the tables printed from them.

use crate::GIB;
use crate::scale::ScaleRounds;
use sta::cli::format::{human_bytes, size_text, table};

/// One timed download.
#[derive(Clone, Copy)]
pub struct Run {
    pub wall: f64,
    pub leech_cpu: f64,
    pub seed_cpu: f64,
}

/// The median, `NaN` for no values.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}
/// A round's download, or why it failed.
pub type Round = Result<Run, String>;

pub fn run_line(r: &Run, size: u64) -> String {
    let gib = size as f64 / GIB;
    format!(
        "{:7.3} s  {:7.1} MB/s  leecher CPU {:.3} s/GiB  seeders CPU {:.3} s/GiB",
        r.wall,
        size as f64 / r.wall / 1e6,
        r.leech_cpu / gib,
        r.seed_cpu / gib
    )
}

pub fn round_line(r: &Round, size: u64) -> String {
    match r {
        Ok(run) => run_line(run, size),
        Err(reason) => format!("FAILED: {reason}"),
    }
}

/// The first line of a failure's reason, cut to fit a table cell (the
/// round's own line above the tables has all of it).
pub fn short_reason(reason: &str) -> String {
    const MAX: usize = 100;
    let line = reason.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

/// `FAILED round N: reason` for each failed round, `;`-separated; empty
/// when every round worked.
fn failures(rounds: &[Round]) -> String {
    rounds
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| (i + 1, e)))
        .map(|(n, e)| format!("FAILED round {n}: {}", short_reason(e)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// WALL s, MB/s, leecher and seeders CPU s/GiB: medians of the rounds that
/// worked (`NaN` when none did).
fn medians(rounds: &[Round], size: u64) -> [f64; 4] {
    let gib = size as f64 / GIB;
    let runs: Vec<&Run> = rounds.iter().filter_map(|r| r.as_ref().ok()).collect();
    [
        median(runs.iter().map(|r| r.wall).collect()),
        median(runs.iter().map(|r| size as f64 / r.wall / 1e6).collect()),
        median(runs.iter().map(|r| r.leech_cpu / gib).collect()),
        median(runs.iter().map(|r| r.seed_cpu / gib).collect()),
    ]
}

/// A figure, or `-` for none (every round failed).
fn figure(x: f64, prec: usize) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.prec$}")
    }
}

pub fn transfer_table(label: &str, size: u64, sta: &[Round], lt: &[Round]) -> String {
    let (s, l) = (medians(sta, size), medians(lt, size));
    let row = |test: &str, imp: &str, v: [f64; 4], prec: [usize; 4], note: String| {
        let mut r = vec![test.to_owned(), imp.to_owned()];
        r.extend(v.iter().zip(prec).map(|(x, p)| figure(*x, p)));
        r.push(note);
        r
    };
    let ok = |rounds: &[Round]| rounds.iter().filter(|r| r.is_ok()).count();
    let ratio = [0, 1, 2, 3].map(|i| s[i] / l[i]);
    let text = table(
        &[
            "TEST",
            "IMPL",
            "WALL s",
            "MB/s",
            "LEECHER CPU s/GiB",
            "SEEDERS CPU s/GiB",
            "NOTE",
        ],
        &[false, false, true, true, true, true, false],
        vec![
            row(label, "STA", s, [3, 1, 3, 3], failures(sta)),
            row(label, "libtorrent", l, [3, 1, 3, 3], failures(lt)),
            row(label, "STA/lt", ratio, [2, 2, 2, 2], String::new()),
        ],
    );
    let counted = match (ok(sta), ok(lt)) {
        (a, b) if a == sta.len() && b == lt.len() => format!("medians of {} round(s)", sta.len()),
        (a, b) => format!(
            "medians of the rounds that worked: STA {a} of {}, libtorrent {b} of {}",
            sta.len(),
            lt.len()
        ),
    };
    format!(
        "transfer {label}: {} file, 512 KiB pieces, {counted}\n{text}",
        size_text(size)
    )
}

pub fn share_table(size: u64, shares: &[(f64, f64)]) -> String {
    let s = median(shares.iter().map(|x| x.0).collect());
    let l = median(shares.iter().map(|x| x.1).collect());
    let mb = |t: f64| size as f64 / t / 1e6;
    let text = table(
        &["IMPL", "SECONDS", "MB/s"],
        &[false, true, true],
        vec![
            vec!["STA".into(), format!("{s:.3}"), format!("{:.1}", mb(s))],
            vec![
                "libtorrent".into(),
                format!("{l:.3}"),
                format!("{:.1}", mb(l)),
            ],
            vec![
                "STA/lt".into(),
                format!("{:.2}", s / l),
                format!("{:.2}", mb(s) / mb(l)),
            ],
        ],
    );
    format!(
        "share: hash {} and make it available, medians of {} round(s)\n{text}",
        size_text(size),
        shares.len()
    )
}

pub fn scale_table(all: &ScaleRounds) -> String {
    let failed: Vec<String> = all
        .failed
        .iter()
        .map(|(n, e)| format!("FAILED round {n}: {}", short_reason(e)))
        .collect();
    let Some(s) = &all.pick else {
        return format!(
            "scale: every one of {} round(s) failed\n{}\n",
            all.failed.len(),
            failed.join("\n")
        );
    };
    let ratios = &all.ratios;
    let total = s.size * s.leechers as u64;
    let gib = |b: u64| b as f64 / GIB;
    let ref_rate = s.size as f64 / s.ref_wall / 1e6;
    let agg = s.aggregate() / 1e6;
    let pct = |x: f64| format!("{x:.1}%");
    let n = s.finish.len();
    let rows: Vec<(String, String)> = vec![
        (
            "1->1 rate (same file, leecher ready, timed from get)".into(),
            format!("{ref_rate:.1} MB/s ({:.2} s)", s.ref_wall),
        ),
        (
            "1->1 seeder CPU per GiB served".into(),
            format!("{:.3} s", s.ref_seed_cpu / gib(s.size)),
        ),
        (
            "1->1 leecher CPU per GiB received (whole life)".into(),
            format!("{:.3} s", s.ref_leecher_cpu / gib(s.size)),
        ),
        (
            format!("1->1 again, the {} copies still in memory", s.leechers),
            format!(
                "{:.1} MB/s ({:.2} s), leecher CPU {:.3} s per GiB",
                s.size as f64 / s.loaded_wall / 1e6,
                s.loaded_wall,
                s.loaded_leecher_cpu / gib(s.size)
            ),
        ),
        (
            format!("1->{} wall time until the last leecher is done", s.leechers),
            format!("{:.2} s", s.wall),
        ),
        (
            format!("1->{} aggregate rate (total bytes / wall)", s.leechers),
            format!("{agg:.1} MB/s ({} in all)", human_bytes(total)),
        ),
        (
            "aggregate / 1->1 rate (target >= 80%)".into(),
            pct(s.ratio() * 100.0),
        ),
        (
            "aggregate / 1->1 with the copies in memory".into(),
            pct(s.loaded_ratio() * 100.0),
        ),
        (
            format!("... in each of the {} round(s), sorted", ratios.len()),
            ratios
                .iter()
                .map(|r| pct(r * 100.0))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "rounds that failed (not in the figures)".into(),
            match failed.is_empty() {
                true => "none".into(),
                false => failed.join("; "),
            },
        ),
        (
            "leecher finish times min / median / max".into(),
            format!(
                "{:.1} / {:.1} / {:.1} s",
                s.finish.first().copied().unwrap_or(0.0),
                median(s.finish.clone()),
                s.finish.get(n.saturating_sub(1)).copied().unwrap_or(0.0)
            ),
        ),
        (
            "leechers received / delivered (duplicate blocks)".into(),
            format!(
                "{} / {} ({})",
                human_bytes(s.received),
                human_bytes(total),
                pct(s.received as f64 * 100.0 / total as f64)
            ),
        ),
        (
            "seeder served (its upload; the rest went leecher to leecher)".into(),
            format!(
                "{} ({} of the total)",
                human_bytes(s.served),
                pct(s.served as f64 * 100.0 / total as f64)
            ),
        ),
        (
            "seeder CPU per GiB served".into(),
            format!(
                "{:.3} s ({:.2} s in all)",
                s.seed_cpu / gib(s.served).max(1e-9),
                s.seed_cpu
            ),
        ),
        (
            "leechers' CPU per GiB received (all leechers, whole life)".into(),
            format!(
                "{:.3} s ({:.0}% system time)",
                s.leechers_cpu / gib(total),
                s.leechers_sys * 100.0 / s.leechers_cpu.max(1e-9)
            ),
        ),
        (
            "tracker CPU during the 1->N download".into(),
            format!("{:.2} s", s.tracker_cpu),
        ),
        (
            "seeder RssAnon before / peak / end".into(),
            format!(
                "{} / {} / {}",
                kib_text(s.rss_anon_before),
                kib_text(s.rss_anon_peak),
                kib_text(s.rss_anon_end)
            ),
        ),
        (
            "seeder VmRSS peak (the mapped file included)".into(),
            kib_text(s.rss_peak),
        ),
    ];
    let text = table(
        &["FIGURE", "VALUE"],
        &[false, false],
        rows.into_iter().map(|(a, b)| vec![a, b]).collect(),
    );
    format!(
        "scale: 1 STA seeder, {} STA leechers at once, {} file; the round with the median ratio of {}{}\n{text}",
        s.leechers,
        size_text(s.size),
        ratios.len(),
        match all.failed.len() {
            0 => String::new(),
            n => format!(" ({n} more failed)"),
        }
    )
}

fn kib_text(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn a_failed_round_is_named_in_its_row_and_left_out_of_the_medians() {
        let run = |wall| {
            Ok(Run {
                wall,
                leech_cpu: 1.0,
                seed_cpu: 1.0,
            })
        };
        let sta = vec![run(1.0), run(2.0), run(3.0)];
        let lt = vec![
            run(4.0),
            Err("the copy differs from the source at byte 7\n    log".into()),
            run(6.0),
        ];
        let t = transfer_table("1->1", 1 << 30, &sta, &lt);
        assert!(t.contains("libtorrent 2 of 3"), "{t}");
        let row = t
            .lines()
            .find(|l| l.starts_with("1->1  libtorrent"))
            .unwrap();
        assert!(row.contains("5.000"), "median of 4 and 6: {row}");
        assert!(
            row.ends_with("FAILED round 2: the copy differs from the source at byte 7"),
            "{row}"
        );
        let none = vec![Err::<Run, String>("x".into())];
        let t = transfer_table("1->1", 1 << 30, &sta, &none);
        assert!(
            t.lines()
                .any(|l| l.contains(" libtorrent ") && l.contains(" - ")),
            "{t}"
        );
    }
}
