//! The measurement around the workers' phases (server CPU and memory
//! from /proc) and the report.

use crate::BoxError;
use crate::args::Target;
use crate::schedule::Ctx;
use crate::sta_load::sta_worker;
use crate::stats::{Hist, KINDS, Stats, us};
use crate::udp_load::udp_worker;
use sta_kit::procfs::{cpu_ticks, status_field, thread_ticks, ticks_per_second};
use std::sync::Arc;
use std::time::Instant;

pub fn measure(ctx: &Arc<Ctx>, pid: Option<u32>, meta_bytes: usize) -> Result<(), BoxError> {
    let a = &ctx.args;
    let hz = ticks_per_second();
    let rss = |key| pid.and_then(|p| status_field(p, key));
    let cpu = || pid.and_then(cpu_ticks);
    let rss_before = rss("VmRSS");
    let cpu_before_setup = cpu();
    let setup_start = Instant::now();
    let workers: Vec<_> = (0..a.threads)
        .map(|w| {
            let ctx = Arc::clone(ctx);
            std::thread::spawn(move || match ctx.target {
                Target::Sta(addr) => sta_worker(&ctx, w, addr),
                Target::Udp(addr) => udp_worker(&ctx, w, addr),
            })
        })
        .collect();
    ctx.barrier.wait(); // setup over
    let setup_secs = setup_start.elapsed().as_secs_f64();
    let rss_after = rss("VmRSS");
    let cpu0 = cpu();
    let own0 = cpu_ticks(std::process::id());
    let threads0 = pid.map(thread_ticks).unwrap_or_default();
    ctx.barrier.wait(); // steady phase starts
    let steady_start = Instant::now();
    ctx.barrier.wait(); // steady phase over
    let steady_secs = steady_start.elapsed().as_secs_f64();
    let cpu1 = cpu();
    let own1 = cpu_ticks(std::process::id());
    let threads1 = pid.map(thread_ticks).unwrap_or_default();
    let mut st = Stats::new();
    for w in workers {
        st.merge(w.join().map_err(|_| "a worker panicked")?);
    }
    let hwm = rss("VmHWM");
    let server_threads = pid.and_then(|p| status_field(p, "Threads"));
    if let Some(f) = &st.failure {
        return Err(format!("a worker failed: {f}").into());
    }

    let mut all = Hist::new();
    for h in &st.steady {
        all.merge(h);
    }
    let done = st.done;
    let rps = done as f64 / a.seconds;
    let cpu_s = match (cpu0, cpu1) {
        (Some(x), Some(y)) => Some((y - x) as f64 / hz),
        _ => None,
    };
    let setup_cpu_s = match (cpu_before_setup, cpu0) {
        (Some(x), Some(y)) => Some((y - x) as f64 / hz),
        _ => None,
    };
    // Share of the steady phase's server CPU used by its busiest thread.
    let busiest = threads1
        .iter()
        .map(|&(tid, t1)| {
            let t0 = threads0.iter().find(|x| x.0 == tid).map_or(0, |x| x.1);
            t1 - t0
        })
        .max();
    let own_cpu_s = match (own0, own1) {
        (Some(x), Some(y)) => Some((y - x) as f64 / hz),
        _ => None,
    };
    let per_cpu_s = cpu_s.filter(|&c| c > 0.0).map(|c| done as f64 / c);
    let bytes_per_entry = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some((a.saturating_sub(b) * 1024) as f64 / ctx.pop.entries as f64),
        _ => None,
    };
    // What the tracker must keep of the announced bitfields (seeders need
    // none): the floor of any per-entry figure.
    let bitfield_bytes: usize = ctx
        .pop
        .sessions
        .iter()
        .flatten()
        .filter(|h| !h.seeder)
        .map(|h| ctx.pop.files[h.file as usize].pieces.div_ceil(8) as usize)
        .sum();
    let bits_per_entry = bitfield_bytes as f64 / ctx.pop.entries.max(1) as f64;
    let mode = match ctx.target {
        Target::Sta(_) => "sta",
        Target::Udp(_) => "udp",
    };
    let load = match a.rate {
        Some(r) => format!("open loop at {r:.0} req/s in bursts of {}", a.burst),
        None => format!(
            "closed loop, window {} per {}",
            a.window,
            if mode == "sta" { "session" } else { "socket" }
        ),
    };
    let fmt_opt = |v: Option<f64>, prec: usize| v.map_or("n/a".into(), |v| format!("{v:.prec$}"));

    println!(
        "== {mode}: {load}, {} s, {} generator thread(s)",
        a.seconds, a.threads
    );
    println!(
        "setup: {} announces in {:.2} s = {:.0}/s (server CPU {} s), p50 {:.0} us, p99 {:.0} us",
        st.setup_done,
        setup_secs,
        st.setup_done as f64 / setup_secs,
        fmt_opt(setup_cpu_s, 2),
        us(st.setup.quantile(0.5)),
        us(st.setup.quantile(0.99)),
    );
    println!(
        "steady: {done} requests in {:.2} s = {rps:.0} req/s; server CPU {} s; {} req per server CPU-second; generator CPU {} s",
        steady_secs,
        fmt_opt(cpu_s, 2),
        fmt_opt(per_cpu_s, 0),
        fmt_opt(own_cpu_s, 2),
    );
    println!(
        "latency: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us, mean {:.1} us",
        us(all.quantile(0.5)),
        us(all.quantile(0.99)),
        us(all.quantile(0.999)),
        us(all.max),
        us(all.mean())
    );
    for (k, h) in st.steady.iter().enumerate() {
        if h.total > 0 {
            println!(
                "  {:<9} {:>9} ({:>4.1} %)  p50 {:>8.1} us  p99 {:>8.1} us  p99.9 {:>8.1} us",
                KINDS[k],
                h.total,
                100.0 * h.total as f64 / all.total.max(1) as f64,
                us(h.quantile(0.5)),
                us(h.quantile(0.99)),
                us(h.quantile(0.999)),
            );
        }
    }
    if st.peers_answers > 0 {
        println!(
            "peers per answer: {:.1}",
            st.peers_returned as f64 / st.peers_answers as f64
        );
    }
    let kb = |v: Option<u64>| v.map_or("n/a".into(), |v| format!("{:.1} MB", v as f64 / 1024.0));
    println!(
        "server: pid {}, {} thread(s), busiest thread {} of steady CPU; RSS before {}, after setup {}, peak {}",
        pid.map_or("n/a".into(), |p| p.to_string()),
        server_threads.map_or("n/a".into(), |t| t.to_string()),
        match (busiest, cpu0, cpu1) {
            (Some(b), Some(x), Some(y)) if y > x =>
                format!("{:.0} %", 100.0 * b as f64 / (y - x) as f64),
            _ => "n/a".into(),
        },
        kb(rss_before),
        kb(rss_after),
        kb(hwm),
    );
    println!(
        "memory: {} bytes per (peer, file) entry over {} entries ({:.0} bytes of info dict and {bits_per_entry:.1} of bitfield per entry announced)",
        fmt_opt(bytes_per_entry, 0),
        ctx.pop.entries,
        meta_bytes as f64 / ctx.pop.entries as f64,
    );
    if st.lost > 0 || st.unsent > 0 {
        println!("lost (timed out): {}, unsent: {}", st.lost, st.unsent);
    }
    for (what, n) in &st.errors {
        println!("ERROR x{n}: {what}");
    }
    let errors: u64 = st.errors.values().sum();
    println!(
        "RESULT mode={mode} rate={} burst={} seconds={} setup_s={setup_secs:.3} setup_rps={:.0} setup_cpu_s={} rps={rps:.0} cpu_s={} req_per_cpu_s={} gen_cpu_s={} p50_us={:.1} p99_us={:.1} p999_us={:.1} rss_before_kb={} rss_after_kb={} hwm_kb={} bytes_per_entry={} bitfield_per_entry={bits_per_entry:.1} entries={} threads={} errors={errors} lost={} unsent={}",
        a.rate.map_or("closed".into(), |r| format!("{r:.0}")),
        a.burst,
        a.seconds,
        st.setup_done as f64 / setup_secs,
        fmt_opt(setup_cpu_s, 2),
        fmt_opt(cpu_s, 2),
        fmt_opt(per_cpu_s, 0),
        fmt_opt(own_cpu_s, 2),
        us(all.quantile(0.5)),
        us(all.quantile(0.99)),
        us(all.quantile(0.999)),
        rss_before.map_or("na".into(), |v| v.to_string()),
        rss_after.map_or("na".into(), |v| v.to_string()),
        hwm.map_or("na".into(), |v| v.to_string()),
        fmt_opt(bytes_per_entry, 0),
        ctx.pop.entries,
        server_threads.map_or("na".into(), |t| t.to_string()),
        st.lost,
        st.unsent,
    );
    Ok(())
}
