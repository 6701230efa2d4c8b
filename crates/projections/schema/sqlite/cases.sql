-- Cases, one row per case. {g} is the generation. Personal fields hold sealed values
-- (wasl.v1.EncryptedPii bytes) and become NULL when the case's personal data is erased.
CREATE TABLE cases_g{g} (
    id                   TEXT PRIMARY KEY,
    owner_org            TEXT   NOT NULL,
    caseworker           TEXT   NOT NULL,
    shared_with          TEXT   NOT NULL,
    status               TEXT   NOT NULL,
    opened_at            INTEGER NOT NULL,
    closed_at            INTEGER,
    close_code           TEXT,
    survivor_code        TEXT   NOT NULL,
    survivor_code_lookup TEXT,
    sex                  TEXT   NOT NULL,
    age_group            TEXT   NOT NULL,
    age_years            INTEGER,
    population_group     TEXT   NOT NULL,
    nationality          TEXT   NOT NULL,
    governorate          TEXT   NOT NULL,
    district             TEXT,
    language             TEXT   NOT NULL,
    vulnerabilities      TEXT   NOT NULL,
    sealed_survivor_code BLOB,
    sealed_age_years     BLOB,
    sealed_vulnerabilities BLOB,
    profile_event        TEXT,
    consents             TEXT   NOT NULL,
    consents_active      INTEGER NOT NULL,
    consent_categories   TEXT   NOT NULL,
    consent_expires_at   INTEGER,
    name                 BLOB,
    phone                BLOB,
    address              BLOB,
    notes                BLOB,
    personal_data_erased INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    version              INTEGER NOT NULL,
    position             INTEGER NOT NULL
);
CREATE INDEX cases_g{g}_owner_idx ON cases_g{g} (owner_org, updated_at, id);
CREATE INDEX cases_g{g}_caseworker_idx ON cases_g{g} (caseworker, updated_at, id);
CREATE INDEX cases_g{g}_updated_idx ON cases_g{g} (updated_at, id);
CREATE INDEX cases_g{g}_lookup_idx ON cases_g{g} (survivor_code_lookup);
