-- Start-up of the newest Python system (2026-03-12, HEAD acc4088), as
-- database.py runs it at every start since 2026-02-13: schema.sql (CREATE
-- … IF NOT EXISTS: on an older file only the missing tables and indexes
-- are made), then ALTERs that add the later columns to older files (a
-- failing one is skipped, as the Python code's try/except did), then the
-- patch of the edge-type CHECK through writable_schema. The widenings of
-- that CHECK after 2026-02-13 went into schema.sql only: older files keep
-- their narrower list.

CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    methodology TEXT NOT NULL,
    concept_id TEXT NOT NULL,
    concept_name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'abandoned')),
    config JSON NOT NULL DEFAULT '{}',
    node_tracker_state TEXT,
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    updated_at TEXT NOT NULL DEFAULT (datetime('now')),
    completed_at TEXT,
    turn_count INTEGER NOT NULL DEFAULT 0,
    surface_velocity_peak REAL NOT NULL DEFAULT 0.0,
    prev_surface_node_count INTEGER NOT NULL DEFAULT 0,
    canonical_velocity_peak REAL NOT NULL DEFAULT 0.0,
    prev_canonical_node_count INTEGER NOT NULL DEFAULT 0,
    focus_history TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS idx_sessions_status ON sessions(status);
CREATE INDEX IF NOT EXISTS idx_sessions_created ON sessions(created_at);

CREATE TABLE IF NOT EXISTS utterances (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_number INTEGER NOT NULL,
    speaker TEXT NOT NULL CHECK (speaker IN ('system', 'user')),
    text TEXT NOT NULL,
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
    embedding BLOB,
    source_quotes TEXT NOT NULL DEFAULT '[]',
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
    edge_type TEXT NOT NULL CHECK (
        edge_type IN (
            -- laddering, means-end chain
            'leads_to', 'revises',
            -- jobs to be done (with 'triggers', since 2026-03-07's patch)
            'occurs_in', 'triggered_by', 'triggers', 'addresses', 'conflicts_with', 'enables', 'supports',
            'means_to', 'ends_to',
            -- critical incident
            'occurred_in', 'involved', 'resulted_in', 'elicited', 'attributed_to',
            'led_to_learning', 'influenced', 'similar_to', 'contrasts_with',
            -- repertory grid
            'evaluated_by', 'opposite_of', 'rated_on', 'similar_on', 'differs_on',
            'implies', 'closer_to_ideal', 'defines',
            -- customer journey
            'transitions_to', 'evokes', 'disrupts', 'via_channel', 'expected_at',
            'confirmed_by', 'violated_by', 'triggered', 'resolved_by'
        )
    ),
    confidence REAL NOT NULL DEFAULT 0.8 CHECK (confidence >= 0.0 AND confidence <= 1.0),
    properties JSON DEFAULT '{}',
    source_utterance_ids JSON NOT NULL DEFAULT '[]',
    recorded_at TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE(source_node_id, target_node_id, edge_type)
);
CREATE INDEX IF NOT EXISTS idx_kg_edges_session ON kg_edges(session_id);
CREATE INDEX IF NOT EXISTS idx_kg_edges_source ON kg_edges(source_node_id);
CREATE INDEX IF NOT EXISTS idx_kg_edges_target ON kg_edges(target_node_id);

-- (canonical.sql: the dual graph)

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

-- (qualitative_signals.sql)

-- The ALTERs for files made before these columns were in schema.sql.
ALTER TABLE kg_nodes ADD COLUMN embedding BLOB;
ALTER TABLE kg_nodes ADD COLUMN source_quotes TEXT DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN surface_velocity_peak REAL NOT NULL DEFAULT 0.0;
ALTER TABLE sessions ADD COLUMN prev_surface_node_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN canonical_velocity_peak REAL NOT NULL DEFAULT 0.0;
ALTER TABLE sessions ADD COLUMN prev_canonical_node_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN focus_history TEXT NOT NULL DEFAULT '[]';

-- 'triggers' patched into a JTBD-era CHECK that lacks it (text replaced
-- in sqlite_master, as database.py does).
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, '''occurs_in'', ''triggered_by'',', '''occurs_in'', ''triggered_by'', ''triggers'',')
 WHERE type = 'table' AND name = 'kg_edges'
   AND instr(sql, '''triggers''') = 0 AND instr(sql, '''triggered_by''') > 0;
PRAGMA writable_schema = OFF;
