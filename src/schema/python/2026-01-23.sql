-- Start-up of the Python system of 2026-01-23 (commits a4d89e5, 30552b8):
-- the first version's script (2026-01-21.sql) and then these two
-- migrations, re-run at every start. The ALTER fails from the second
-- start on ("duplicate column"); the Python module swallowed that
-- failure, and so does the history here (a failing ALTER is skipped).

CREATE TABLE IF NOT EXISTS scoring_candidates (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_number INTEGER NOT NULL,
    strategy_id TEXT NOT NULL,
    strategy_name TEXT NOT NULL,
    focus_type TEXT NOT NULL,
    focus_description TEXT,
    final_score REAL NOT NULL,
    is_selected INTEGER NOT NULL DEFAULT 0,
    vetoed_by TEXT,
    tier1_results JSON DEFAULT '[]',
    tier2_results JSON DEFAULT '[]',
    reasoning TEXT,
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE(session_id, turn_number, strategy_id, focus_type)
);
CREATE INDEX IF NOT EXISTS idx_scoring_candidates_session ON scoring_candidates(session_id);
CREATE INDEX IF NOT EXISTS idx_scoring_candidates_turn ON scoring_candidates(session_id, turn_number);
CREATE INDEX IF NOT EXISTS idx_scoring_candidates_selected ON scoring_candidates(session_id, turn_number, is_selected);

ALTER TABLE kg_nodes ADD COLUMN stance INTEGER NOT NULL DEFAULT 0 CHECK (stance IN (-1, 0, 1));
CREATE INDEX IF NOT EXISTS idx_kg_nodes_stance ON kg_nodes(stance);
