-- scoring_candidates (strategy, focus, score, tier), created by the
-- versions of 2026-01-23 … 02-10 at every start and dropped by 02-10's
-- migration 006. Part of those versions' start-ups (python_history.rs).

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
