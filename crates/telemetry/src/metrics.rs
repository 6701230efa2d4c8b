//! What Wasl counts, under one set of names: each function records one observation through the
//! `metrics` facade, which does nothing until a recorder is installed (the `wasl` binary installs
//! the Prometheus one). Labels are aggregate kinds, command and verb names, projection names,
//! routes and outcome codes — never ids of people, never personal data, and never an unbounded
//! set of values.

use std::time::Duration;

/// Counter: commands carried out by the event store, by aggregate, command and outcome.
pub const COMMANDS: &str = "wasl_commands_total";
/// Counter: appends that lost a race and were decided again (or refused), by aggregate.
pub const CONFLICTS: &str = "wasl_command_conflicts_total";
/// Histogram: seconds to append a command's events, until JetStream acknowledged them.
pub const APPEND_SECONDS: &str = "wasl_append_duration_seconds";
/// Gauge: the last log position a projection has applied.
pub const PROJECTION_POSITION: &str = "wasl_projection_position";
/// Gauge: events in the log not yet applied to a projection.
pub const PROJECTION_LAG: &str = "wasl_projection_lag_events";
/// Counter: events applied to the read models.
pub const PROJECTED: &str = "wasl_projected_events_total";
/// Counter: events parked because a projection could not apply them, by projection.
pub const PARKED: &str = "wasl_parked_events_total";
/// Counter: partner messages, by outcome (`published`, `skipped` when a feed already had it).
pub const PARTNER_MESSAGES: &str = "wasl_partner_messages_total";
/// Gauge: the last log position the router has delivered.
pub const ROUTER_POSITION: &str = "wasl_router_position";
/// Counter: partner commands over NATS, by verb and outcome.
pub const PARTNER_COMMANDS: &str = "wasl_partner_commands_total";
/// Counter: webhook attempts, by outcome (`delivered`, `failed`).
pub const WEBHOOK_ATTEMPTS: &str = "wasl_webhook_attempts_total";
/// Counter: failed webhook attempts, by failure code (`status_5xx`, `timeout`, …).
pub const WEBHOOK_FAILURES: &str = "wasl_webhook_failures_total";
/// Counter: webhook messages given up on and stored as dead letters.
pub const WEBHOOK_DEAD_LETTERS: &str = "wasl_webhook_dead_letters_total";
/// Counter: messages a service could not read (poison: garbage bytes, the wrong shape, missing
/// headers, an unknown schema), reported and set aside, by service and kind.
pub const POISON: &str = "wasl_poison_messages_total";
/// Counter: commands of the follow-up service, by action and outcome.
pub const FOLLOWUP_ACTIONS: &str = "wasl_followup_actions_total";
/// Histogram: seconds from a deadline (or the event that triggered a command) to the store's
/// answer to the follow-up service's command.
pub const FOLLOWUP_DELAY: &str = "wasl_followup_delay_seconds";
/// Counter: HTTP requests, by method, route template and status.
pub const HTTP_REQUESTS: &str = "wasl_http_requests_total";
/// Histogram: seconds to answer an HTTP request, by method and route template.
pub const HTTP_SECONDS: &str = "wasl_http_request_duration_seconds";
/// Counter: connections closed at once because the API had its most connections open.
pub const HTTP_CONNECTIONS_REFUSED: &str = "wasl_http_connections_refused_total";
/// Counter: sign-ins refused before the password was checked, by why (`name`, `client`,
/// `everyone`: a back-off; `busy`: too many passwords being checked).
pub const SIGN_IN_THROTTLED: &str = "wasl_sign_in_throttled_total";

/// Every metric with its help text, for the exporter's `# HELP` lines.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        COMMANDS,
        "Commands carried out by the event store, by aggregate, command and outcome.",
    ),
    (
        CONFLICTS,
        "Appends that lost a race on the aggregate (optimistic concurrency), by aggregate.",
    ),
    (
        APPEND_SECONDS,
        "Seconds from sending a command's events to JetStream's acknowledgement.",
    ),
    (PROJECTION_POSITION, "The last log position applied to the projection."),
    (PROJECTION_LAG, "Events in the log not yet applied to the projection."),
    (PROJECTED, "Events applied to the read models."),
    (PARKED, "Events parked because the projection could not apply them."),
    (PARTNER_MESSAGES, "Partner feed messages, by outcome."),
    (
        ROUTER_POSITION,
        "The last log position the router has delivered to the partner feeds.",
    ),
    (
        PARTNER_COMMANDS,
        "Partner commands received over NATS, by verb and outcome.",
    ),
    (WEBHOOK_ATTEMPTS, "Webhook delivery attempts, by outcome."),
    (WEBHOOK_FAILURES, "Failed webhook delivery attempts, by failure code."),
    (
        WEBHOOK_DEAD_LETTERS,
        "Webhook messages stored as dead letters after the last attempt.",
    ),
    (
        POISON,
        "Messages a service could not read, reported and set aside, by service and kind.",
    ),
    (
        LOG_DIVERGED,
        "Times a reader found the event log behind its checkpoint or replaced, and stopped.",
    ),
    (
        FOLLOWUP_ACTIONS,
        "Commands of the follow-up service (overdue, escalation, cancellation), by action and outcome.",
    ),
    (
        FOLLOWUP_DELAY,
        "Seconds from a deadline or a triggering event to the follow-up command carried out.",
    ),
    (HTTP_REQUESTS, "HTTP requests, by method, route and status."),
    (HTTP_SECONDS, "Seconds to answer an HTTP request, by method and route."),
    (
        HTTP_CONNECTIONS_REFUSED,
        "Connections closed at once because the API had its most connections open.",
    ),
    (
        SIGN_IN_THROTTLED,
        "Sign-ins refused before the password was checked, by reason.",
    ),
];

/// A command carried out (or refused) by the event store.
pub fn command(aggregate: &'static str, command: &'static str, outcome: &'static str) {
    metrics::counter!(COMMANDS, "aggregate" => aggregate, "command" => command, "outcome" => outcome).increment(1);
}

/// An append that lost a race.
pub fn conflict(aggregate: &'static str) {
    metrics::counter!(CONFLICTS, "aggregate" => aggregate).increment(1);
}

/// How long one append took.
pub fn append_time(aggregate: &'static str, took: Duration) {
    metrics::histogram!(APPEND_SECONDS, "aggregate" => aggregate).record(took.as_secs_f64());
}

/// A projection's position and lag after a batch.
pub fn projection(projection: &'static str, position: u64, lag: u64) {
    metrics::gauge!(PROJECTION_POSITION, "projection" => projection).set(position as f64);
    metrics::gauge!(PROJECTION_LAG, "projection" => projection).set(lag as f64);
}

/// Events applied to the read models.
pub fn projected(events: u64) {
    metrics::counter!(PROJECTED).increment(events);
}

/// An event parked by a projection.
pub fn parked(projection: &'static str) {
    metrics::counter!(PARKED, "projection" => projection).increment(1);
}

/// A partner message published or skipped.
pub fn partner_message(outcome: &'static str) {
    metrics::counter!(PARTNER_MESSAGES, "outcome" => outcome).increment(1);
}

/// The router's position.
pub fn router_position(position: u64) {
    metrics::gauge!(ROUTER_POSITION).set(position as f64);
}

/// A partner command answered.
pub fn partner_command(verb: &'static str, outcome: String) {
    metrics::counter!(PARTNER_COMMANDS, "verb" => verb, "outcome" => outcome).increment(1);
}

/// A webhook attempt that reached a 2xx.
pub fn webhook_delivered() {
    metrics::counter!(WEBHOOK_ATTEMPTS, "outcome" => "delivered").increment(1);
}

/// A failed webhook attempt, by its failure code.
pub fn webhook_failed(code: String) {
    metrics::counter!(WEBHOOK_ATTEMPTS, "outcome" => "failed").increment(1);
    metrics::counter!(WEBHOOK_FAILURES, "code" => code).increment(1);
}

/// A webhook message stored as a dead letter.
pub fn webhook_dead_letter() {
    metrics::counter!(WEBHOOK_DEAD_LETTERS).increment(1);
}

/// A message `service` could not read and set aside (dead letter, error reply, report entry,
/// or skipped with a log line), by `kind` (`not_json`, `wrong_shape`, `missing_headers`, …).
/// Both labels come from a fixed set in the code, never from the message.
pub fn poison(service: &'static str, kind: &'static str) {
    metrics::counter!(POISON, "service" => service, "kind" => kind).increment(1);
}

/// An HTTP request answered.
pub fn http_request(method: String, route: String, status: u16, took: Duration) {
    metrics::histogram!(HTTP_SECONDS, "method" => method.clone(), "route" => route.clone()).record(took.as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status.to_string()).increment(1);
}

/// Counter: times a reader with a checkpoint found the event log behind it or replaced, and
/// stopped (`projector`, `router`).
pub const LOG_DIVERGED: &str = "wasl_log_diverged_total";

/// A connection was closed at once: the API had its most connections open.
pub fn http_connection_refused() {
    metrics::counter!(HTTP_CONNECTIONS_REFUSED).increment(1);
}

/// A sign-in was refused before its password was checked (`name`, `client`, `everyone`,
/// `busy`).
pub fn sign_in_throttled(why: &'static str) {
    metrics::counter!(SIGN_IN_THROTTLED, "why" => why).increment(1);
}

/// A reader stopped because the log went backwards under it.
pub fn log_diverged(reader: &'static str) {
    metrics::counter!(LOG_DIVERGED, "reader" => reader).increment(1);
}

/// A command of the follow-up service answered: `outcome` is `ok`, `replayed` or `refused`;
/// `delay` is from its deadline (or trigger) to the answer.
pub fn followup_action(action: &'static str, outcome: &'static str, delay: Duration) {
    metrics::counter!(FOLLOWUP_ACTIONS, "action" => action, "outcome" => outcome).increment(1);
    if outcome != "refused" {
        metrics::histogram!(FOLLOWUP_DELAY, "action" => action).record(delay.as_secs_f64());
    }
}
