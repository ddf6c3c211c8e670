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
CREATE TABLE IF NOT EXISTS canonical_slots (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    slot_name TEXT NOT NULL,
    description TEXT,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'candidate' CHECK (status IN ('candidate', 'active')),
    support_count INTEGER NOT NULL DEFAULT 0,
    first_seen_turn INTEGER NOT NULL,
    promoted_turn INTEGER,
    embedding BLOB,
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    promoted_at TEXT,
    UNIQUE(session_id, slot_name, node_type)
);
CREATE INDEX IF NOT EXISTS idx_canonical_slots_session ON canonical_slots(session_id);
CREATE INDEX IF NOT EXISTS idx_canonical_slots_status ON canonical_slots(session_id, status);
CREATE INDEX IF NOT EXISTS idx_canonical_slots_type ON canonical_slots(session_id, node_type);

CREATE TABLE IF NOT EXISTS surface_to_slot_mapping (
    surface_node_id TEXT PRIMARY KEY REFERENCES kg_nodes(id) ON DELETE CASCADE,
    canonical_slot_id TEXT NOT NULL REFERENCES canonical_slots(id) ON DELETE CASCADE,
    similarity_score REAL NOT NULL,
    assigned_turn INTEGER NOT NULL,
    assigned_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_surface_mapping_slot ON surface_to_slot_mapping(canonical_slot_id);

CREATE TABLE IF NOT EXISTS canonical_edges (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    source_slot_id TEXT NOT NULL REFERENCES canonical_slots(id) ON DELETE CASCADE,
    target_slot_id TEXT NOT NULL REFERENCES canonical_slots(id) ON DELETE CASCADE,
    edge_type TEXT NOT NULL,
    support_count INTEGER NOT NULL DEFAULT 1,
    surface_edge_ids TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    updated_at TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE(session_id, source_slot_id, target_slot_id, edge_type)
);
CREATE INDEX IF NOT EXISTS idx_canonical_edges_session ON canonical_edges(session_id);
CREATE INDEX IF NOT EXISTS idx_canonical_edges_source ON canonical_edges(source_slot_id);
CREATE INDEX IF NOT EXISTS idx_canonical_edges_target ON canonical_edges(target_slot_id);

-- 006: scoring_candidates goes.
DROP TABLE IF EXISTS scoring_candidates;

-- database.py after the migrations: the coverage columns go from files
-- that still have them (fails, skipped, where they are gone).
ALTER TABLE sessions DROP COLUMN coverage_score;
ALTER TABLE scoring_history DROP COLUMN coverage_score;
