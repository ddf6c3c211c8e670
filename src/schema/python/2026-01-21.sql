-- Start-up of the Python system's first version (2026-01-21, commit
-- 0f41d43): one script of CREATE … IF NOT EXISTS, run at every start and
-- recording nothing else. Written from SCHEMA.md and the Python
-- repository (michaelarutyunov/interview-system-v2, src/persistence).
--
-- This directory describes the Python system's schema history once, one
-- file per version's start-up (see `src/schema/python_history.rs`).
-- Adoption builds every shape those start-ups produce in scratch databases
-- and compares a file with them as SQLite reports them (columns, types,
-- nullability, defaults, keys, indexes, CHECKs), so formatting never
-- matters. The tests build their fixture files from these same scripts,
-- run through SQLite by other drivers (rusqlite, sqlx, python3's sqlite3)
-- as the Python module ran them.

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
    turn_count INTEGER NOT NULL DEFAULT 0,
    coverage_score REAL DEFAULT 0.0
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
    source_utterance_ids JSON NOT NULL DEFAULT '[]',
    recorded_at TEXT NOT NULL DEFAULT (datetime('now')),
    superseded_by TEXT REFERENCES kg_nodes(id),
    UNIQUE(session_id, label, node_type, superseded_by)
);

CREATE INDEX IF NOT EXISTS idx_kg_nodes_session ON kg_nodes(session_id);
CREATE INDEX IF NOT EXISTS idx_kg_nodes_type ON kg_nodes(node_type);
CREATE INDEX IF NOT EXISTS idx_kg_nodes_label ON kg_nodes(session_id, label);

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
    coverage_score REAL NOT NULL,
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

CREATE TABLE IF NOT EXISTS concept_elements (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    element_id TEXT NOT NULL,
    label TEXT NOT NULL,
    element_type TEXT NOT NULL DEFAULT 'attribute',
    priority TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('high', 'medium', 'low')),
    is_covered INTEGER NOT NULL DEFAULT 0,
    covered_at TEXT,
    covered_by_node_id TEXT REFERENCES kg_nodes(id),
    UNIQUE(session_id, element_id)
);

CREATE INDEX IF NOT EXISTS idx_elements_session ON concept_elements(session_id);
CREATE INDEX IF NOT EXISTS idx_elements_covered ON concept_elements(session_id, is_covered);
