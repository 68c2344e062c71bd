//! The figures of `sta-bench swarm`: one line per run as it goes, then a
//! table of medians (STA and libtorrent side by side) and one of every
//! run, so that the noise is visible.

use crate::args::SwarmOpts;
use crate::swarm::{Figures, Impl, Setup};
use crate::tables::median;
use sta::cli::format::table;

/// One run's outcome: its figures, or why it failed.
pub struct Record {
    pub letter: char,
    pub imp: Impl,
    pub run: usize,
    pub outcome: Result<Figures, String>,
}

impl Record {
    /// "(d) run 2 STA: why", for a failed run.
    pub fn failure_line(&self) -> Option<String> {
        let why = self.outcome.as_ref().err()?;
        Some(format!(
            "({}) run {} {}: {why}",
            self.letter,
            self.run,
            self.imp.name()
        ))
    }
}

/// Last leecher / (F/u) and seed upload / F of a run.
fn ratios(f: &Figures, size: u64, setup: &Setup) -> (f64, f64) {
    (
        f.last() / setup.f_over_u(size),
        f.seed_up as f64 / size as f64,
    )
}

/// The line printed as a run ends.
pub fn run_line(r: &Record, size: u64, setup: &Setup) -> String {
    let f = match &r.outcome {
        Ok(f) => f,
        Err(why) => return format!("FAILED: {why}"),
    };
    let (last, up) = ratios(f, size, setup);
    let mut times: Vec<f64> = f.done.clone();
    times.sort_by(f64::total_cmp);
    let times: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
    let stopped = f
        .seed_stopped
        .map_or(String::new(), |t| format!("; seed stopped at {t:.2} s"));
    format!(
        "last leecher {:.2} s = {last:.3} x F/u; seed uploaded {up:.3} x F{stopped}; \
         leechers done at {} s",
        f.last(),
        times.join(" ")
    )
}

/// The successful runs of one scenario and implementation.
fn figures(records: &[Record], letter: char, imp: Impl) -> Vec<&Figures> {
    records
        .iter()
        .filter(|r| r.letter == letter && r.imp == imp)
        .filter_map(|r| r.outcome.as_ref().ok())
        .collect()
}

/// Median of last / (F/u), of seed / F, and "ok/runs", of one
/// implementation in one scenario; FAILED cells when no run succeeded.
fn median_cells(
    records: &[Record],
    setup: &Setup,
    imp: Impl,
    runs: usize,
    size: u64,
) -> [String; 4] {
    let ok = figures(records, setup.letter, imp);
    let count = format!("{}/{runs}", ok.len());
    if ok.is_empty() {
        let f = "FAILED".to_owned();
        return [f.clone(), f.clone(), f, count];
    }
    let last = median(ok.iter().map(|f| f.last()).collect());
    let (r_last, r_up): (Vec<f64>, Vec<f64>) = ok.iter().map(|f| ratios(f, size, setup)).unzip();
    [
        format!("{last:.2} s"),
        format!("{:.3}", median(r_last)),
        format!("{:.3}", median(r_up)),
        count,
    ]
}

/// Medians, STA and libtorrent side by side, one row per scenario.
pub fn summary_table(records: &[Record], opts: &SwarmOpts, size: u64) -> String {
    let mut rows = Vec::new();
    for &letter in &opts.scenarios {
        let setup = Setup::of(letter);
        let s = median_cells(records, &setup, Impl::Sta, opts.runs, size);
        let l = median_cells(records, &setup, Impl::Lt, opts.runs, size);
        rows.push(vec![
            format!("({letter})"),
            format!("{:.2} s", setup.f_over_u(size)),
            s[0].clone(),
            l[0].clone(),
            s[1].clone(),
            l[1].clone(),
            s[2].clone(),
            l[2].clone(),
            format!("{} / {}", s[3], l[3]),
        ]);
    }
    let text = table(
        &[
            "SCENARIO",
            "F/u",
            "STA LAST",
            "LT LAST",
            "STA LAST/(F/u)",
            "LT LAST/(F/u)",
            "STA SEED UP/F",
            "LT SEED UP/F",
            "RUNS OK STA / LT",
        ],
        &[false, true, true, true, true, true, true, true, true],
        rows,
    );
    let mut legend = String::new();
    for &letter in &opts.scenarios {
        legend.push_str(&format!("  ({letter}) {}\n", Setup::of(letter).title));
    }
    format!(
        "swarm: medians of the successful runs (of {} per implementation); LT = libtorrent; \
         LAST = last leecher done, from the first get; F/u at the seed's rate\n{legend}{text}",
        opts.runs
    )
}

/// Three cells of one run: last, / (F/u), seed / F (or FAILED).
fn run_cells(r: Option<&Record>, setup: &Setup, size: u64) -> [String; 3] {
    match r.map(|r| &r.outcome) {
        Some(Ok(f)) => {
            let (last, up) = ratios(f, size, setup);
            [
                format!("{:.2} s", f.last()),
                format!("{last:.3}"),
                format!("{up:.3}"),
            ]
        }
        Some(Err(_)) => ["FAILED".into(), "-".into(), "-".into()],
        None => ["-".into(), "-".into(), "-".into()],
    }
}

/// Every run's figures, STA and libtorrent side by side.
pub fn runs_table(records: &[Record], opts: &SwarmOpts, size: u64) -> String {
    let mut rows = Vec::new();
    for &letter in &opts.scenarios {
        let setup = Setup::of(letter);
        for run in 1..=opts.runs {
            let find = |imp| {
                records
                    .iter()
                    .find(|r| r.letter == letter && r.run == run && r.imp == imp)
            };
            let mut row = vec![format!("({letter})"), run.to_string()];
            row.extend(run_cells(find(Impl::Sta), &setup, size));
            row.extend(run_cells(find(Impl::Lt), &setup, size));
            rows.push(row);
        }
    }
    let text = table(
        &[
            "SCENARIO",
            "RUN",
            "STA LAST",
            "STA /(F/u)",
            "STA SEED/F",
            "LT LAST",
            "LT /(F/u)",
            "LT SEED/F",
        ],
        &[false, true, true, true, true, true, true, true],
        rows,
    );
    format!("swarm: every run (STA then libtorrent, alternated)\n{text}")
}
