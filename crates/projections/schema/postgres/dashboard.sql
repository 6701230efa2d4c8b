-- The coordinators' dashboards and indicator report: one row per referral with only codes,
-- reporting periods (Iraq time) and the first time it moved; see src/rows/dashboard.rs. No case
-- id, no caseworker, no sealed value. {g} is the generation.
CREATE TABLE dashboard_referrals_g{g} (
    id                  TEXT PRIMARY KEY,
    week                TEXT   NOT NULL,
    quarter             TEXT   NOT NULL,
    governorate         TEXT   NOT NULL,
    district            TEXT   NOT NULL,
    category            TEXT   NOT NULL,
    service_id          TEXT   NOT NULL,
    to_org              TEXT   NOT NULL,
    from_org            TEXT   NOT NULL,
    priority            TEXT   NOT NULL,
    status              TEXT   NOT NULL,
    population_group    TEXT   NOT NULL,
    sex                 TEXT   NOT NULL,
    age_group           TEXT   NOT NULL,
    objectives          TEXT   NOT NULL,
    requested_at        BIGINT NOT NULL,
    received_at         BIGINT,
    answered_at         BIGINT,
    accepted_at         BIGINT,
    rejected_at         BIGINT,
    served_at           BIGINT,
    completed_at        BIGINT,
    failed_at           BIGINT,
    cancelled_at        BIGINT,
    decline_code        TEXT,
    decision_overdue_at BIGINT,
    followed_up_at      BIGINT,
    client_reached      BIGINT,
    overdue_now         TEXT   NOT NULL,
    open_escalations    BIGINT NOT NULL,
    overdue_recorded    TEXT   NOT NULL,
    escalated           TEXT   NOT NULL,
    acknowledged        TEXT   NOT NULL,
    in_error            BIGINT NOT NULL
);
-- Periods and the filters coordinators use most.
CREATE INDEX dashboard_referrals_g{g}_requested_idx ON dashboard_referrals_g{g} (requested_at);
CREATE INDEX dashboard_referrals_g{g}_place_idx ON dashboard_referrals_g{g} (governorate, category);
CREATE INDEX dashboard_referrals_g{g}_to_idx ON dashboard_referrals_g{g} (to_org, requested_at);
