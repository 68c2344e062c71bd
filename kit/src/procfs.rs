//! Figures the Linux kernel keeps of a process in /proc: CPU time and
//! memory. Each reader returns `None` where the file or field is missing
//! (another OS, a process that has exited), never a made-up figure.

use std::fs;

/// A field in kB of /proc/PID/status (`VmRSS`, `VmHWM`, `RssAnon`), or a
/// count (`Threads`).
pub fn status_field(pid: u32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// (utime, stime) in clock ticks, from a /proc/.../stat file.
fn stat_ticks(path: &str) -> Option<(u64, u64)> {
    let text = fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted after its closing parenthesis.
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // f[0] is field 3 (state); utime is field 14, stime field 15.
    Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?))
}

/// (utime, stime) of the whole process (all its threads), in clock ticks.
pub fn cpu_split(pid: u32) -> Option<(u64, u64)> {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

/// utime + stime of the whole process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    cpu_split(pid).map(|(u, s)| u + s)
}

/// utime + stime of each thread of the process, by thread id.
pub fn thread_ticks(pid: u32) -> Vec<(u32, u64)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let tid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let (u, s) = stat_ticks(&format!("/proc/{pid}/task/{tid}/stat"))?;
        Some((tid, u + s))
    })
    .collect()
}

/// Clock ticks per second, the unit of the CPU figures.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Bytes of memory available to new work (`MemAvailable`).
pub fn mem_available() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// The 1, 5 and 15 minute load averages, as the kernel writes them.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The soft limit on open files of this process (`u64::MAX`: unlimited).
pub fn open_files_limit() -> Option<u64> {
    let text = fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    match line.split_whitespace().nth(3)? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_figures_are_readable() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(status_field(me, "VmRSS").is_some_and(|kb| kb > 0));
        assert!(status_field(me, "NoSuchField").is_none());
        assert!(thread_ticks(me).iter().any(|&(tid, _)| tid == me));
        assert!(mem_available().is_some());
        assert_eq!(loadavg().split(' ').count(), 3);
        assert!(open_files_limit().is_some_and(|n| n > 0));
        assert!(ticks_per_second() > 0.0);
        assert!(cpu_ticks(u32::MAX).is_none());
    }
}
