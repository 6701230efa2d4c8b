-- One file for PostgreSQL and SQLite: only the SQL both share (ADR 0005).
-- The API's own state, in the read-model database under its own migration table
-- (_api_migrations), beside the projections' and the services' tables.

-- The last head of the access audit (WASL_AUDIT) an API appended or verified: its stream
-- sequence and record hash. Kept outside NATS so that whoever can delete or rewrite the stream
-- cannot also move it; an API refuses to start on a stream that no longer holds it. It only
-- moves forward (several instances share it), and only to records JetStream has acknowledged.
CREATE TABLE api_audit_checkpoint (
    stream     TEXT PRIMARY KEY,
    sequence   BIGINT NOT NULL,
    hash       TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
