-- Referrals, one row per referral, and their timeline, one row per event. {g} is the generation.
-- Each *_at column is the first time the referral reached that status.
CREATE TABLE referrals_g{g} (
    id                  TEXT PRIMARY KEY,
    case_id             TEXT   NOT NULL,
    from_org            TEXT   NOT NULL,
    from_user           TEXT   NOT NULL,
    to_org              TEXT   NOT NULL,
    service_id          TEXT   NOT NULL,
    category            TEXT   NOT NULL,
    priority            TEXT   NOT NULL,
    status              TEXT   NOT NULL,
    sex                 TEXT   NOT NULL,
    age_group           TEXT   NOT NULL,
    population_group    TEXT   NOT NULL,
    language            TEXT   NOT NULL,
    governorate         TEXT   NOT NULL,
    district            TEXT,
    consent_basis       TEXT   NOT NULL,
    requested_at        BIGINT NOT NULL,
    received_at         BIGINT,
    accepted_at         BIGINT,
    rejected_at         BIGINT,
    in_progress_at      BIGINT,
    on_hold_at          BIGINT,
    completed_at        BIGINT,
    failed_at           BIGINT,
    cancelled_at        BIGINT,
    entered_in_error_at BIGINT,
    decline_code        TEXT,
    suggested_org       TEXT,
    failure_code        TEXT,
    cancel_code         TEXT,
    hold_code           TEXT,
    error_code          TEXT,
    redirected_from     TEXT,
    followed_up         BIGINT NOT NULL,
    followed_up_at      BIGINT,
    service_received    TEXT,
    satisfaction        BIGINT,
    overdue             TEXT   NOT NULL,
    escalated           TEXT   NOT NULL,
    acknowledged        TEXT   NOT NULL,
    -- 1 while a response deadline the receiving organisation missed still applies
    -- (acknowledgement while requested, decision while requested or received, stalled while
-- accepted or on hold): the inbox puts
    -- these first.
    response_overdue    BIGINT NOT NULL,
    -- The deadlines recorded as missed, per kind.
    acknowledgement_due_at BIGINT,
    decision_due_at     BIGINT,
    follow_up_due_at    BIGINT,
    stalled_due_at      BIGINT,
    -- The latest escalation (NULL: never escalated), the escalations no coordinator has
    -- acknowledged yet, and the latest acknowledgement with its note's code.
    escalated_at        BIGINT,
    open_escalations    BIGINT NOT NULL,
    acknowledged_at     BIGINT,
    acknowledge_code    TEXT,
    notes               BYTEA,
    updated_at          BIGINT NOT NULL,
    version             BIGINT NOT NULL,
    position            BIGINT NOT NULL,
    -- 1 while the referral waits for or is being served by the receiving organisation (the
    -- inbox's default statuses, OPEN_STATUSES in src/query/referrals.rs), else 0. The inbox
    -- walks referrals_g{g}_open_idx, so its cost does not grow with the organisation's closed
    -- history.
    is_open             INTEGER GENERATED ALWAYS AS (CASE WHEN status IN
                            ('requested', 'received', 'accepted', 'in_progress', 'on_hold')
                            THEN 1 ELSE 0 END) STORED
);
-- The inbox walks these in its order: overdue first, then newest request.
CREATE INDEX referrals_g{g}_open_idx ON referrals_g{g} (to_org, is_open, response_overdue, requested_at, id);
CREATE INDEX referrals_g{g}_to_idx ON referrals_g{g} (to_org, response_overdue, requested_at, id);
-- The coordinators' escalation list, newest escalation first.
CREATE INDEX referrals_g{g}_escalated_idx ON referrals_g{g} (escalated_at, id);
CREATE INDEX referrals_g{g}_from_idx ON referrals_g{g} (from_org, updated_at, id);
CREATE INDEX referrals_g{g}_user_idx ON referrals_g{g} (from_user, updated_at, id);
CREATE INDEX referrals_g{g}_redirected_idx ON referrals_g{g} (redirected_from);
CREATE INDEX referrals_g{g}_case_idx ON referrals_g{g} (case_id);
CREATE INDEX referrals_g{g}_updated_idx ON referrals_g{g} (updated_at, id);

CREATE TABLE referral_history_g{g} (
    seq         BIGINT PRIMARY KEY,
    referral_id TEXT   NOT NULL,
    case_id     TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    event_type  TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    actor_user  TEXT   NOT NULL,
    actor_org   TEXT   NOT NULL,
    from_status TEXT,
    to_status   TEXT   NOT NULL,
    reason_code TEXT,
    reason_text BYTEA
);
CREATE INDEX referral_history_g{g}_referral_idx ON referral_history_g{g} (referral_id, seq);

-- Cases whose personal data was erased: their referrals' sealed values stay empty, also those of
-- events that come after the erasure, whatever the batch boundaries.
CREATE TABLE referral_erased_cases_g{g} (
    case_id TEXT PRIMARY KEY
);
