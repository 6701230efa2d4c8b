//! Rates and latency percentiles of one measured phase, and the process's peak memory.

use serde::Serialize;
use std::time::Duration;

/// How fast one phase went: `count` operations in `seconds`, with per-operation latencies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throughput {
    /// Operations carried out (messages, commands or aggregates).
    pub count: u64,
    /// Wall-clock time of the whole phase.
    pub seconds: f64,
    /// `count / seconds`.
    pub per_second: f64,
    /// Median latency of one operation, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency of one operation, in milliseconds.
    pub p99_ms: f64,
    /// CPU time (user + system, all threads) this process spent per operation, in
    /// microseconds, where `/proc` tells.
    pub bench_cpu_us_per_op: Option<f64>,
    /// CPU time the temporary nats-server spent per operation, in microseconds; `None` for a
    /// server given by URL.
    pub server_cpu_us_per_op: Option<f64>,
}

impl Throughput {
    /// Summarises `latencies` (one per operation) measured over `elapsed`.
    pub fn from_latencies(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        let seconds = elapsed.as_secs_f64();
        let count = latencies.len() as u64;
        Self {
            count,
            seconds,
            per_second: if seconds > 0.0 { count as f64 / seconds } else { 0.0 },
            p50_ms: millis(percentile(&latencies, 50)),
            p99_ms: millis(percentile(&latencies, 99)),
            bench_cpu_us_per_op: None,
            server_cpu_us_per_op: None,
        }
    }

    /// Adds the CPU time spent during the phase, per operation.
    pub fn with_cpu(mut self, cpu: CpuUsed) -> Self {
        let per_op = |seconds: Option<f64>| seconds.filter(|_| self.count > 0).map(|s| s * 1e6 / self.count as f64);
        self.bench_cpu_us_per_op = per_op(cpu.bench_seconds);
        self.server_cpu_us_per_op = per_op(cpu.server_seconds);
        self
    }
}

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
/// `/proc/<pid>/stat` (in ticks of 1/100 s, Linux's fixed `USER_HZ`).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces; the fields after it start with the state.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// The nearest-rank `p`th percentile of sorted values; zero for none.
pub fn percentile(sorted: &[Duration], p: u32) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * p as usize).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }

    #[test]
    fn a_throughput_counts_its_operations() {
        let t = Throughput::from_latencies(vec![Duration::from_millis(2); 10], Duration::from_secs(2));
        assert_eq!(t.count, 10);
        assert!((t.per_second - 5.0).abs() < 1e-9);
        assert!((t.p99_ms - 2.0).abs() < 1e-9);
    }

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
}
