-- Start-up of the Python system of 2026-02-10/12 (commit 196de95), the
-- last that re-ran numbered migrations at every start: its consolidated
-- first migration (the coverage columns and concept_elements gone), then
-- the five after it, then the Python-side drop of the coverage columns.

CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    methodology TEXT NOT NULL,
    concept_id TEXT NOT NULL,
    concept_name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'abandoned')),
    config JSON NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    updated_at TEXT NOT NULL DEFAULT (datetime('now')),
    completed_at TEXT,
    turn_count INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS idx_sessions_status ON sessions(status);
CREATE INDEX IF NOT EXISTS idx_sessions_created ON sessions(created_at);

CREATE TABLE IF NOT EXISTS utterances (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_number INTEGER NOT NULL,
    speaker TEXT NOT NULL CHECK (speaker IN ('system', 'user')),
    text TEXT NOT NULL,
    discourse_markers JSON DEFAULT '[]',
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE(session_id, turn_number, speaker)
);

CREATE INDEX IF NOT EXISTS idx_utterances_session ON utterances(session_id);
CREATE INDEX IF NOT EXISTS idx_utterances_turn ON utterances(session_id, turn_number);

CREATE TABLE IF NOT EXISTS kg_nodes (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    node_type TEXT NOT NULL,
    confidence REAL NOT NULL DEFAULT 0.8 CHECK (confidence >= 0.0 AND confidence <= 1.0),
    properties JSON DEFAULT '{}',
    stance INTEGER NOT NULL DEFAULT 0 CHECK (stance IN (-1, 0, 1)),
    source_utterance_ids JSON NOT NULL DEFAULT '[]',
    recorded_at TEXT NOT NULL DEFAULT (datetime('now')),
    superseded_by TEXT REFERENCES kg_nodes(id),
    UNIQUE(session_id, label, node_type, superseded_by)
);

CREATE INDEX IF NOT EXISTS idx_kg_nodes_session ON kg_nodes(session_id);
CREATE INDEX IF NOT EXISTS idx_kg_nodes_type ON kg_nodes(node_type);
CREATE INDEX IF NOT EXISTS idx_kg_nodes_label ON kg_nodes(session_id, label);
CREATE INDEX IF NOT EXISTS idx_kg_nodes_stance ON kg_nodes(stance);

CREATE TABLE IF NOT EXISTS kg_edges (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    source_node_id TEXT NOT NULL REFERENCES kg_nodes(id) ON DELETE CASCADE,
    target_node_id TEXT NOT NULL REFERENCES kg_nodes(id) ON DELETE CASCADE,
    edge_type TEXT NOT NULL CHECK (edge_type IN ('leads_to', 'revises')),
    confidence REAL NOT NULL DEFAULT 0.8 CHECK (confidence >= 0.0 AND confidence <= 1.0),
    properties JSON DEFAULT '{}',
    source_utterance_ids JSON NOT NULL DEFAULT '[]',
    recorded_at TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE(source_node_id, target_node_id, edge_type)
);

CREATE INDEX IF NOT EXISTS idx_kg_edges_session ON kg_edges(session_id);
CREATE INDEX IF NOT EXISTS idx_kg_edges_source ON kg_edges(source_node_id);
CREATE INDEX IF NOT EXISTS idx_kg_edges_target ON kg_edges(target_node_id);

CREATE TABLE IF NOT EXISTS scoring_history (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_number INTEGER NOT NULL,
    depth_score REAL NOT NULL,
    saturation_score REAL NOT NULL,
    novelty_score REAL DEFAULT NULL,
    richness_score REAL DEFAULT NULL,
    strategy_selected TEXT NOT NULL,
    strategy_reasoning TEXT,
    scorer_details JSON DEFAULT '{}',
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE(session_id, turn_number)
);

CREATE INDEX IF NOT EXISTS idx_scoring_session ON scoring_history(session_id);

-- (001 also creates scoring_candidates and qualitative_signals:
-- scoring_candidates.sql, qualitative_signals.sql, run before this file.)

-- 002: concept_elements goes.
DROP TABLE IF EXISTS concept_elements;

-- 003, at every start: kg_edges rebuilt with the wider CHECK (SQLite
-- cannot change a CHECK in place), its rows copied by position.
CREATE TABLE IF NOT EXISTS kg_edges_backup AS SELECT * FROM kg_edges;
DROP TABLE IF EXISTS kg_edges;
CREATE TABLE kg_edges (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    source_node_id TEXT NOT NULL REFERENCES kg_nodes(id) ON DELETE CASCADE,
    target_node_id TEXT NOT NULL REFERENCES kg_nodes(id) ON DELETE CASCADE,
    edge_type TEXT NOT NULL CHECK (
        edge_type IN (
            -- the first two, then the JTBD and means-end chain types
            'leads_to', 'revises',
            'occurs_in', 'triggered_by', 'addresses', 'conflicts_with', 'enables', 'supports',
            'means_to', 'ends_to'
        )
    ),
    confidence REAL NOT NULL DEFAULT 0.8 CHECK (confidence >= 0.0 AND confidence <= 1.0),
    properties JSON DEFAULT '{}',
    source_utterance_ids JSON NOT NULL DEFAULT '[]',
    recorded_at TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE(source_node_id, target_node_id, edge_type)
);
INSERT INTO kg_edges SELECT * FROM kg_edges_backup;
CREATE INDEX IF NOT EXISTS idx_kg_edges_session ON kg_edges(session_id);
CREATE INDEX IF NOT EXISTS idx_kg_edges_source ON kg_edges(source_node_id);
CREATE INDEX IF NOT EXISTS idx_kg_edges_target ON kg_edges(target_node_id);
DROP TABLE kg_edges_backup;

-- 004: the node tracker's state (fails, skipped, once the column exists).
ALTER TABLE sessions ADD COLUMN node_tracker_state TEXT;

-- 005: the dual graph (no embedding on kg_nodes yet).
-- (in canonical.sql, run after this file)

-- 006: scoring_candidates goes.
DROP TABLE IF EXISTS scoring_candidates;

-- database.py after the migrations: the coverage columns go from files
-- that still have them (fails, skipped, where they are gone).
ALTER TABLE sessions DROP COLUMN coverage_score;
ALTER TABLE scoring_history DROP COLUMN coverage_score;
