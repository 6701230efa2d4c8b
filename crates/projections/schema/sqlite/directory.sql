-- The service directory: organisations and their services. {g} is the generation.
-- List columns (areas, governorates, languages, sexes) are comma-delimited with a comma at
-- each end (",ar,ckb,") so that one LIKE serves both databases; "any" means unrestricted.
CREATE TABLE organisations_g{g} (
    id            TEXT PRIMARY KEY,
    name          TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    registered_at INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    position      INTEGER NOT NULL
);
CREATE INDEX organisations_g{g}_name_idx ON organisations_g{g} (name, id);

CREATE TABLE services_g{g} (
    id           TEXT PRIMARY KEY,
    org_id       TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    category     TEXT   NOT NULL,
    areas        TEXT   NOT NULL,
    governorates TEXT   NOT NULL,
    languages    TEXT   NOT NULL,
    sexes        TEXT   NOT NULL,
    min_age      INTEGER NOT NULL,
    max_age      INTEGER NOT NULL,
    accepting    INTEGER NOT NULL,
    capacity     INTEGER,
    retired      INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    position     INTEGER NOT NULL
);
CREATE INDEX services_g{g}_org_idx ON services_g{g} (org_id, id);
CREATE INDEX services_g{g}_category_idx ON services_g{g} (category, id);
