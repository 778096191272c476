-- driftbridge schema, version 5: events whose data did not parse (issue 18).

-- A known event type whose `data` had a shape this release could not read is stored all the
-- same (Drift does not send it twice), with the parser's words here and no job. `driftbridge
-- events malformed` lists them; `driftbridge replay --event ID` runs one once a release reads
-- it, and clears this.
ALTER TABLE events ADD COLUMN parse_error TEXT;
