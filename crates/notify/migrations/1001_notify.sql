-- One file for PostgreSQL and SQLite: only the SQL both share (ADR 0005).
-- The notification service's own state, in the read-model database under its own migration
-- table (_notify_migrations). Nothing here is personal data: ids, codes, times, and no address
-- (addresses are read from WASL_ACCOUNTS when a mail is sent).

-- Where the service has read the log to, the event id at that position, why it stopped while
-- it is stopped (the log went backwards), and the first position it mails for: events before
-- it (the history before the service first started) only teach it the referrals.
CREATE TABLE notify_state (
    name             TEXT PRIMARY KEY,
    checkpoint       BIGINT NOT NULL,
    checkpoint_event TEXT,
    halted           TEXT,
    mail_from        BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- What later events of a referral do not carry: who made it, who receives it, its codes.
CREATE TABLE notify_referrals (
    referral_id TEXT PRIMARY KEY,
    from_user   TEXT NOT NULL,
    to_org      TEXT NOT NULL,
    category    TEXT NOT NULL,
    priority    TEXT NOT NULL
);

-- One row per (event, person told): written in the transaction that moves the checkpoint,
-- so a replay never queues a mail twice; `state` goes pending -> sent | dropped | failed.
-- A pending row is claimed by pushing `not_before` past the send (a lease), so two instances
-- never send it at once and a crash mid-send retries it once the lease ends.
CREATE TABLE notify_mail (
    event_id    TEXT   NOT NULL,
    recipient   TEXT   NOT NULL,
    audience    TEXT   NOT NULL,
    referral_id TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    detail      TEXT,
    category    TEXT   NOT NULL,
    priority    TEXT   NOT NULL,
    occurred_at BIGINT NOT NULL,
    state       TEXT   NOT NULL,
    attempts    BIGINT NOT NULL,
    not_before  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    settled_at  BIGINT,
    outcome     TEXT,
    PRIMARY KEY (event_id, recipient)
);
CREATE INDEX notify_mail_due_idx ON notify_mail (state, not_before);

-- Log messages the service could not read (never contents).
CREATE TABLE notify_parked (
    seq       BIGINT PRIMARY KEY,
    subject   TEXT   NOT NULL,
    error     TEXT   NOT NULL,
    parked_at BIGINT NOT NULL
);
