-- Bookkeeping shared by every projection. The projections' own tables are created per
-- generation from schema/sqlite/*.sql (see src/schema.rs) and read through views.

-- The live generation of each projection and the last stream sequence it applied. The
-- checkpoint changes in the same transaction as the projection's rows.
CREATE TABLE projection_state (
    name           TEXT PRIMARY KEY,
    generation     INTEGER NOT NULL,
    checkpoint     INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- A rebuild in progress: a fresh generation filled from sequence 1 beside the live one.
CREATE TABLE projection_rebuild (
    name       TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    checkpoint INTEGER NOT NULL,
    started_at INTEGER NOT NULL
);

-- Events a projection could not decode or apply (and later events of the same aggregate,
-- which wait behind them). Never personal data: the error names fields and codes only.
CREATE TABLE parked_events (
    projection TEXT   NOT NULL,
    generation INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    subject    TEXT   NOT NULL,
    event_type TEXT,
    error      TEXT   NOT NULL,
    attempts   INTEGER NOT NULL,
    parked_at  INTEGER NOT NULL,
    PRIMARY KEY (projection, generation, seq)
);
CREATE INDEX parked_events_subject_idx ON parked_events (projection, generation, subject);
