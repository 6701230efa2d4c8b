//! What `/proc` says about a process: its CPU time, its threads' CPU time, its peak resident
//! memory. Every benchmark reads `/proc` through here, so one parser decides what a `stat` line
//! means. Where `/proc` does not tell (not Linux, a process gone), the answer is `None`.

use std::collections::HashMap;

/// CPU seconds spent by this process and by the server during a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuUsed {
    /// This process.
    pub bench_seconds: Option<f64>,
    /// The nats-server, when it is a local process.
    pub server_seconds: Option<f64>,
}

/// Measures the CPU time this process and a local server use from [`start`](Self::start) to
/// [`stop`](Self::stop). On the 2-core machines Wasl is measured on, both share the cores, so
/// CPU per operation explains a rate better than the rate alone.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    server_pid: Option<u32>,
    bench: Option<f64>,
    server: Option<f64>,
}

impl CpuMeter {
    /// Starts measuring; `server_pid` is the local nats-server's process, if any.
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            server_pid,
            bench: cpu_seconds(None),
            server: server_pid.and_then(|pid| cpu_seconds(Some(pid))),
        }
    }

    /// The CPU time used since [`start`](Self::start).
    pub fn stop(&self) -> CpuUsed {
        let since = |before: Option<f64>, now: Option<f64>| Some(now? - before?);
        CpuUsed {
            bench_seconds: since(self.bench, cpu_seconds(None)),
            server_seconds: since(self.server, self.server_pid.and_then(|pid| cpu_seconds(Some(pid)))),
        }
    }
}

/// The CPU time (user + system) process `pid` (`None`: this process) has used, in seconds, from
/// `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    stat_cpu_seconds(&std::fs::read_to_string(path).ok()?)
}

/// User + system time from a `/proc/…/stat` line, in seconds (ticks of 1/100 s, Linux's fixed
/// `USER_HZ`).
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces; the fields after it start with the state.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// CPU time of every process named `postgres` on this machine (server and backends), in seconds.
/// Other clients of the same server count too, so it is an upper bound for this run's share.
pub(crate) fn postgres_cpu_seconds() -> Option<f64> {
    let mut total = 0.0;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let is_postgres = std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == "postgres");
        if is_postgres && let Some(seconds) = cpu_seconds(Some(pid)) {
            total += seconds;
            found = true;
        }
    }
    found.then_some(total)
}

/// The name and CPU time (seconds) of each thread of this process, by thread id.
pub(crate) type ThreadCpu = HashMap<u32, (String, f64)>;

/// The CPU time (seconds) and name of every thread of this process.
pub(crate) fn thread_cpu() -> ThreadCpu {
    let mut threads = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let Some(seconds) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| stat_cpu_seconds(&stat))
        else {
            continue;
        };
        threads.insert(tid, (name.trim().to_owned(), seconds));
    }
    threads
}

/// The peak resident set size (`VmHWM`) of process `pid` (`None`: this process), in bytes; `None`
/// where `/proc` does not tell.
pub fn peak_rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets this process's `VmHWM` to its current resident size by writing `5` to
/// `/proc/self/clear_refs` (Linux ≥ 4.0), so that the next [`peak_rss_bytes`] is the peak since
/// now; whether it worked.
pub(crate) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Per-phase peaks of this process's resident memory: `VmHWM` is reset before a phase
/// ([`reset_peak_rss`]) and read after it.
pub(crate) struct PeakRss {
    /// Every reset worked so far.
    pub(crate) resets: bool,
    overall: Option<u64>,
}

impl PeakRss {
    pub(crate) fn new() -> Self {
        Self {
            resets: true,
            overall: peak_rss_bytes(None),
        }
    }

    fn note(&mut self, peak: Option<u64>) {
        self.overall = self.overall.max(peak);
    }

    pub(crate) fn phase_start(&mut self) {
        self.note(peak_rss_bytes(None));
        self.resets &= reset_peak_rss();
    }

    pub(crate) fn phase_end(&mut self) -> Option<u64> {
        let peak = peak_rss_bytes(None);
        self.note(peak);
        peak
    }

    pub(crate) fn overall(&self) -> Option<u64> {
        self.overall.max(peak_rss_bytes(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_peak_rss_and_uses_cpu_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes(None).is_some_and(|b| b > 0));
            let meter = CpuMeter::start(None);
            let used = meter.stop();
            assert!(used.bench_seconds.is_some_and(|s| s >= 0.0));
            assert_eq!(used.server_seconds, None);
        }
    }

    #[test]
    fn peaks_can_be_reset_on_linux() {
        if cfg!(target_os = "linux") {
            let mut peaks = PeakRss::new();
            peaks.phase_start();
            assert!(peaks.phase_end().is_some());
            assert!(peaks.overall().is_some());
        }
    }

    #[test]
    fn cpu_time_is_read_from_a_stat_line() {
        let stat = "42 (bench load) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(stat_cpu_seconds(stat), Some(3.0));
        assert_eq!(stat_cpu_seconds("garbage"), None);
        if cfg!(target_os = "linux") {
            assert!(!thread_cpu().is_empty());
        }
    }
}
