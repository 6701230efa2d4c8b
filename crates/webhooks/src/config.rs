//! The settings of the webhook service: where it keeps things in JetStream, how it posts and how
//! it retries. Plain structs (no clap): the command line maps its flags onto them.

use crate::net::Destinations;
use std::time::Duration;

/// Where the webhook service keeps its state, and how it delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhooksConfig {
    /// KV bucket of the endpoints, one key per organisation (`WASL_WEBHOOKS`). It keeps no
    /// history: an old revision would keep an old signing secret.
    pub endpoints_bucket: String,
    /// KV bucket of the delivery status, one key per organisation (`WASL_WEBHOOK_STATUS`).
    pub status_bucket: String,
    /// The dead-letter stream (`WASL_WEBHOOK_DEAD`, subjects `wasl.webhook.dead.<org>`).
    pub dead_stream: String,
    /// Replicas of the buckets and the dead-letter stream (1 embedded, 3 in production).
    pub replicas: usize,
    /// Name of the durable consumer the worker keeps on each `WASL_OUT_<org>` stream.
    pub consumer: String,
    /// Retries.
    pub retry: RetryPolicy,
    /// How long one POST may take, connection included, before it counts as a timeout.
    pub request_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// The consumer's ack wait: how long an unacknowledged message stays with a worker that
    /// stopped answering (crashed) before it is delivered again. While it works on a message
    /// (posting, waiting to retry) the worker tells the server every third of it.
    pub ack_wait: Duration,
    /// How long to wait before looking again when an organisation's feed does not exist yet or
    /// NATS failed.
    pub retry_nats_after: Duration,
    /// On shutdown, how long organisations' tasks get to hand back their message.
    pub shutdown_grace: Duration,
    /// Where endpoints may point: public addresses only, unless the operator allowed ranges
    /// (`--webhook-allow-net`). Checked when an endpoint is set and at every delivery.
    pub destinations: Destinations,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            endpoints_bucket: "WASL_WEBHOOKS".to_owned(),
            status_bucket: "WASL_WEBHOOK_STATUS".to_owned(),
            dead_stream: "WASL_WEBHOOK_DEAD".to_owned(),
            replicas: 1,
            consumer: "wasl-webhooks".to_owned(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            ack_wait: Duration::from_secs(60),
            retry_nats_after: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(5),
            destinations: Destinations::default(),
        }
    }
}

/// Exponential backoff with full jitter: after the `n`th failed attempt the worker waits a
/// uniformly random time in `[0, min(cap, base · 2^(n-1))]`, and after `max_attempts` failed
/// attempts it dead-letters the message.
///
/// The defaults (5 s, 30 min, 12 attempts) give ceilings of 5 s, 10 s, 20 s … 21 min 20 s, then
/// 30 min: at most about 1 h 43 min, on average about half that, before a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first ceiling.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// Attempts in all (the first one included) before the message is dead-lettered; at least 1.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(30 * 60),
            max_attempts: 12,
        }
    }
}

impl RetryPolicy {
    /// The longest wait after `failures` failed attempts (1 = after the first).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.base.saturating_mul(1u32 << doublings.min(31)).min(self.cap)
    }

    /// A random wait in `[0, ceiling(failures)]` (full jitter).
    pub fn delay(&self, failures: u32) -> Duration {
        let ceiling = self.ceiling(failures);
        // A failing random source only loses the jitter, not the backoff.
        let random = getrandom::u64().unwrap_or(u64::MAX / 2);
        ceiling.mul_f64(random as f64 / u64::MAX as f64)
    }

    /// The longest total wait before a message is dead-lettered.
    pub fn worst_case(&self) -> Duration {
        (1..self.max_attempts.max(1))
            .map(|failures| self.ceiling(failures))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let secs: Vec<u64> = (1..=12).map(|n| policy.ceiling(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800, 1800]);
        assert_eq!(policy.worst_case().as_secs(), 6155);
        assert_eq!(policy.ceiling(10_000), policy.cap);
    }

    #[test]
    fn delays_stay_under_their_ceiling() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_attempts: 5,
        };
        for failures in 1..10 {
            assert!(policy.delay(failures) <= policy.ceiling(failures));
        }
    }
}
