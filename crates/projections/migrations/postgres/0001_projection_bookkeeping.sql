-- Bookkeeping shared by every projection. The projections' own tables are created per
-- generation from schema/postgres/*.sql (see src/schema.rs) and read through views.

-- The live generation of each projection and the last stream sequence it applied. The
-- checkpoint changes in the same transaction as the projection's rows.
CREATE TABLE projection_state (
    name           TEXT PRIMARY KEY,
    generation     BIGINT NOT NULL,
    checkpoint     BIGINT NOT NULL,
    schema_version BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- A rebuild in progress: a fresh generation filled from sequence 1 beside the live one.
CREATE TABLE projection_rebuild (
    name       TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    checkpoint BIGINT NOT NULL,
    started_at BIGINT NOT NULL
);

-- Events a projection could not decode or apply (and later events of the same aggregate,
-- which wait behind them). Never personal data: the error names fields and codes only.
CREATE TABLE parked_events (
    projection TEXT   NOT NULL,
    generation BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    subject    TEXT   NOT NULL,
    event_type TEXT,
    error      TEXT   NOT NULL,
    attempts   BIGINT NOT NULL,
    parked_at  BIGINT NOT NULL,
    PRIMARY KEY (projection, generation, seq)
);
CREATE INDEX parked_events_subject_idx ON parked_events (projection, generation, subject);
