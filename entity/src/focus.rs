//! `FocusHistory`: which strategy and node each turn focused on,
//! `sessions.focus_history`.

use sea_orm::FromJsonQueryResult;
use serde::{Deserialize, Serialize};

/// One turn's focus, as the Python system's `FocusEntry` has it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FocusEntry {
    /// The turn (from 1).
    pub turn: i32,
    /// The node focused on; empty when the turn focused on none.
    #[serde(default)]
    pub node_id: String,
    /// That node's label; empty when there is none.
    #[serde(default)]
    pub label: String,
    /// The strategy selected for the turn.
    pub strategy: String,
}

/// The focus of each turn so far, oldest first: a JSON list of
/// `{turn, node_id, label, strategy}` objects (default `[]`).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, FromJsonQueryResult,
)]
#[serde(transparent)]
pub struct FocusHistory(pub Vec<FocusEntry>);

impl std::ops::Deref for FocusHistory {
    type Target = [FocusEntry];

    fn deref(&self) -> &[FocusEntry] {
        &self.0
    }
}

impl From<Vec<FocusEntry>> for FocusHistory {
    fn from(entries: Vec<FocusEntry>) -> Self {
        Self(entries)
    }
}
