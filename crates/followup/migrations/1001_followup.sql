-- One file for PostgreSQL and SQLite: only the SQL both share (ADR 0005).
-- The follow-up service's own state, in the read-model database under its own migration table
-- (_followup_migrations). Everything here is derived from the event log and can be rebuilt by
-- replaying it; the checkpoint commits with the rows in one transaction.

-- Where the service has read the log to, the event id at that position, and why it stopped
-- while it is stopped (the log went backwards).
CREATE TABLE followup_state (
    name             TEXT PRIMARY KEY,
    checkpoint       BIGINT NOT NULL,
    checkpoint_event TEXT,
    halted           TEXT,
    updated_at       BIGINT NOT NULL
);

-- What the service needs to know of each referral: codes and ids only, never personal data.
CREATE TABLE followup_referrals (
    referral_id      TEXT PRIMARY KEY,
    case_id          TEXT NOT NULL,
    consent_id       TEXT,
    from_org         TEXT NOT NULL,
    to_org           TEXT NOT NULL,
    category         TEXT NOT NULL,
    priority         TEXT NOT NULL,
    status           TEXT NOT NULL,
    overdue_count    BIGINT NOT NULL,
    escalation_count BIGINT NOT NULL
);
CREATE INDEX followup_referrals_case_idx ON followup_referrals (case_id);

-- Deadlines not met yet; a row goes when it is met or when it fires.
CREATE TABLE followup_deadlines (
    referral_id TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    due_at      BIGINT NOT NULL,
    PRIMARY KEY (referral_id, kind)
);
CREATE INDEX followup_deadlines_due_idx ON followup_deadlines (due_at);

-- Commands decided but not yet answered by the event store (a transactional outbox): written in
-- the transaction that decided them, deleted once the store answered. Each has a deterministic
-- command id, so sending one twice — after a crash, or by two instances — stores it once.
CREATE TABLE followup_outbox (
    command_id  TEXT   PRIMARY KEY,
    referral_id TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    due_at      BIGINT NOT NULL,
    not_before  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX followup_outbox_next_idx ON followup_outbox (not_before);

-- Log messages the service could not read (never contents).
CREATE TABLE followup_parked (
    seq       BIGINT PRIMARY KEY,
    subject   TEXT   NOT NULL,
    error     TEXT   NOT NULL,
    parked_at BIGINT NOT NULL
);
