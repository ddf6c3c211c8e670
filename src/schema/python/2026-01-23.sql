-- Start-up of the Python system of 2026-01-23 (commits a4d89e5, 30552b8):
-- the first version's script (2026-01-21.sql), then its migration
-- creating scoring_candidates (scoring_candidates.sql), then this one, re-run at every start. The ALTER fails from the second
-- start on ("duplicate column"); the Python module swallowed that
-- failure, and so does the history here (a failing ALTER is skipped).

ALTER TABLE kg_nodes ADD COLUMN stance INTEGER NOT NULL DEFAULT 0 CHECK (stance IN (-1, 0, 1));
CREATE INDEX IF NOT EXISTS idx_kg_nodes_stance ON kg_nodes(stance);
