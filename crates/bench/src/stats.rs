//! Rates and latency percentiles of one measured phase.

use crate::probe::CpuUsed;
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
}
