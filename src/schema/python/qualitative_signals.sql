-- qualitative_signals (the LLM-extracted signals of a turn), created by
-- every version since 2026-01-26 at every start. Part of those versions'
-- start-ups (python_history.rs).

CREATE TABLE IF NOT EXISTS qualitative_signals (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_number INTEGER NOT NULL,
    llm_model TEXT,
    extraction_latency_ms INTEGER,
    extraction_errors TEXT,
    uncertainty_signal TEXT,
    reasoning_signal TEXT,
    emotional_signal TEXT,
    contradiction_signal TEXT,
    knowledge_ceiling_signal TEXT,
    concept_depth_signal TEXT,
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE(session_id, turn_number)
);
CREATE INDEX IF NOT EXISTS idx_qualitative_signals_session ON qualitative_signals(session_id);
CREATE INDEX IF NOT EXISTS idx_qualitative_signals_turn ON qualitative_signals(session_id, turn_number);
