-- driftbridge schema, version 16: one lead-signal write at a time per person and sink.
-- A meeting booked from a calendar page (no conversation) reaches the CRMs as a signal, and its
-- reschedule or cancellation must move the record its booking created. As with a delivery row,
-- the job writing holds the row, and marks it pending before its first CRM call so that a
-- retry after a crash looks for what that attempt may have created before creating again.
ALTER TABLE signal_records ADD COLUMN holder BIGINT;
ALTER TABLE signal_records ADD COLUMN held_until BIGINT;
ALTER TABLE signal_records ADD COLUMN pending_since BIGINT;
