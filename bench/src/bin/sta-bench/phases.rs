//! The share and transfer phases: STA and libtorrent on the same file.

use crate::harness::{Bench, remove_dir};
use crate::libtorrent::LtSeeder;
use crate::sta_peers::StaPeer;
use crate::tables::{Round, round_line};
use crate::{Step, failed, say};
use sta::cli::format::size_text;
use sta::control::FileReport;
use std::path::Path;
use std::time::Instant;

impl Bench {
    /// Shares the file `rounds` times each way; returns STA's report of the
    /// file and libtorrent's info hash, and leaves the torrent at `torrent`.
    pub fn share_phase(
        &mut self,
        file: &Path,
        torrent: &Path,
        out: &mut Vec<(f64, f64)>,
    ) -> Step<(FileReport, String)> {
        let rounds = if self.opts.share { self.opts.rounds } else { 1 };
        say("");
        say(format_args!(
            "== share: hash {} and make it available ({rounds} round(s)) ==",
            size_text(self.opts.size)
        ));
        let mut result = None;
        for r in 1..=rounds {
            let peer = self.start_peerd("sharer")?;
            let t = Instant::now();
            let report = self.share(&peer, file)?;
            let sta = t.elapsed().as_secs_f64();
            self.stop_step(&[peer.id])?;
            remove_dir(&peer.dir)?;
            let (lt, hash, version) = self.lt_make(file, torrent, None)?;
            say(format_args!(
                "  round {r}: STA {sta:.3} s, libtorrent {version} {lt:.3} s"
            ));
            out.push((sta, lt));
            result = Some((report, hash));
        }
        if !self.opts.share {
            out.clear();
        }
        result.ok_or_else(|| failed("no share round"))
    }

    #[allow(clippy::type_complexity)]
    pub fn transfer_phase(
        &mut self,
        file: &Path,
        torrent: &Path,
        sta_file: &FileReport,
    ) -> Step<Vec<(&'static str, Vec<Round>, Vec<Round>)>> {
        let size = self.opts.size;
        let save = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut results = Vec::new();
        let mut sta_seeders: Vec<StaPeer> = Vec::new();
        let mut lt_seeders: Vec<LtSeeder> = Vec::new();
        for (label, n) in [("1->1", 1usize), ("3->1", 3)] {
            say("");
            say(format_args!(
                "== transfer {label}: {} from {n} seeder(s) to 1 leecher ({} round(s)) ==",
                size_text(size),
                self.opts.rounds
            ));
            let have = sta_seeders.len();
            let t = Instant::now();
            let (more, _) = self.sta_seeders("sta-seed", have + 1..=n, file, have as u32)?;
            sta_seeders.extend(more);
            let more = self.lt_seeders(lt_seeders.len() + 1..=n, torrent, &save)?;
            lt_seeders.extend(more);
            say(format_args!(
                "  seeders ready in {:.1} s (STA: shared and listed by the tracker; libtorrent: checked, seeding)",
                t.elapsed().as_secs_f64()
            ));
            let ids: Vec<usize> = sta_seeders.iter().map(|s| s.id).collect();
            let (mut sta, mut lt) = (Vec::new(), Vec::new());
            for r in 1..=self.opts.rounds {
                let what = format!("transfer {label} round {r} STA");
                let s = self.round(&what, |b| b.sta_run(&ids, sta_file, file))?;
                say(format_args!(
                    "  round {r} STA:        {}",
                    round_line(&s, size)
                ));
                sta.push(s);
                let what = format!("transfer {label} round {r} libtorrent");
                let l = self.round(&what, |b| b.lt_run(&lt_seeders, torrent, file))?;
                say(format_args!(
                    "  round {r} libtorrent: {}",
                    round_line(&l, size)
                ));
                lt.push(l);
            }
            results.push((label, sta, lt));
        }
        let mut ids: Vec<usize> = sta_seeders.iter().map(|s| s.id).collect();
        ids.extend(lt_seeders.iter().map(|s| s.id));
        self.stop_step(&ids)?;
        for s in &sta_seeders {
            remove_dir(&s.dir)?;
        }
        Ok(results)
    }
}
