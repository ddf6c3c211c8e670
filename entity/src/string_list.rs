//! A JSON array of strings, the shape of provenance lists and discourse
//! markers.

use sea_orm::FromJsonQueryResult;
use serde::{Deserialize, Serialize};

/// A JSON array of strings, stored as JSON text on SQLite and `jsonb` on
/// PostgreSQL (`["u-1","u-2"]`), read back as a `Vec<String>`: the
/// utterance ids a node or edge was extracted from, or the discourse
/// markers of an utterance. Rows the Python module wrote (`'[]'`,
/// `'["because"]'`) read the same way.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, FromJsonQueryResult,
)]
#[serde(transparent)]
pub struct StringList(pub Vec<String>);

impl StringList {
    /// Whether `item` is in the list.
    #[must_use]
    pub fn contains(&self, item: &str) -> bool {
        self.0.iter().any(|s| s == item)
    }

    /// Appends `item` unless it is there already; says whether it was added.
    pub fn add_once(&mut self, item: &str) -> bool {
        if self.contains(item) {
            false
        } else {
            self.0.push(item.to_owned());
            true
        }
    }
}

impl From<Vec<String>> for StringList {
    fn from(items: Vec<String>) -> Self {
        Self(items)
    }
}

impl<const N: usize> From<[&str; N]> for StringList {
    fn from(items: [&str; N]) -> Self {
        Self(items.iter().map(|&s| s.to_owned()).collect())
    }
}

impl std::ops::Deref for StringList {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}
