-- Cases, one row per case. {g} is the generation. Personal fields hold sealed values
-- (wasl.v1.EncryptedPii bytes) and become NULL when the case's personal data is erased.
CREATE TABLE cases_g{g} (
    id                   TEXT PRIMARY KEY,
    owner_org            TEXT   NOT NULL,
    caseworker           TEXT   NOT NULL,
    shared_with          TEXT   NOT NULL,
    status               TEXT   NOT NULL,
    opened_at            BIGINT NOT NULL,
    closed_at            BIGINT,
    close_code           TEXT,
    survivor_code        TEXT   NOT NULL,
    survivor_code_lookup TEXT,
    sex                  TEXT   NOT NULL,
    age_group            TEXT   NOT NULL,
    age_years            BIGINT,
    population_group     TEXT   NOT NULL,
    nationality          TEXT   NOT NULL,
    governorate          TEXT   NOT NULL,
    district             TEXT,
    language             TEXT   NOT NULL,
    vulnerabilities      TEXT   NOT NULL,
    sealed_survivor_code BYTEA,
    sealed_age_years     BYTEA,
    sealed_vulnerabilities BYTEA,
    profile_event        TEXT,
    consents             TEXT   NOT NULL,
    consents_active      BIGINT NOT NULL,
    consent_categories   TEXT   NOT NULL,
    consent_expires_at   BIGINT,
    name                 BYTEA,
    phone                BYTEA,
    address              BYTEA,
    notes                BYTEA,
    personal_data_erased BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    version              BIGINT NOT NULL,
    position             BIGINT NOT NULL
);
CREATE INDEX cases_g{g}_owner_idx ON cases_g{g} (owner_org, updated_at, id);
CREATE INDEX cases_g{g}_caseworker_idx ON cases_g{g} (caseworker, updated_at, id);
CREATE INDEX cases_g{g}_updated_idx ON cases_g{g} (updated_at, id);
CREATE INDEX cases_g{g}_lookup_idx ON cases_g{g} (survivor_code_lookup);
