-- The log never goes backwards unnoticed: next to each checkpoint, the event id (`ce-id`) of
-- the message it points at, so that a log replaced or cut shorter under the read models is
-- recognised; and why the projector stopped projecting, while it is stopped (NULL otherwise).
ALTER TABLE projection_state ADD COLUMN checkpoint_event TEXT;
ALTER TABLE projection_state ADD COLUMN halted TEXT;
ALTER TABLE projection_rebuild ADD COLUMN checkpoint_event TEXT;
