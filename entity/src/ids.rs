//! Typed ids: each table's key (and every column that names one) has a
//! type of its own, so that ids of different rows cannot be swapped or
//! passed where another is meant. Each is a UUID string, or whatever text
//! the Python system stored, kept as TEXT (`DeriveValueType` over
//! `String`), and serialises as the bare string (`#[serde(transparent)]`).

use std::fmt;

use sea_orm::DeriveValueType;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, DeriveValueType, Serialize,
            Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id with this text.
            #[must_use]
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id's text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's text, owned.
            #[must_use]
            pub fn into_string(self) -> String {
                self.0
            }
        }

        // A primary key's type must say how it is made from an
        // auto-increment value: these never are (ids are text).
        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
                Err(sea_orm::DbErr::ConvertFromU64(stringify!($name)))
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        // So that a borrowed id filters a query (`Column::Id.eq(&id)`).
        impl From<&$name> for sea_orm::Value {
            fn from(id: &$name) -> Self {
                sea_orm::Value::String(Some(id.0.clone()))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

impl From<Vec<UtteranceId>> for crate::StringList {
    fn from(ids: Vec<UtteranceId>) -> Self {
        ids.into_iter()
            .map(UtteranceId::into_string)
            .collect::<Vec<_>>()
            .into()
    }
}

id_type!(
    /// A session's id (`sessions.id`, and `session_id` everywhere).
    SessionId
);
id_type!(
    /// An utterance's id (`utterances.id`).
    UtteranceId
);
id_type!(
    /// A knowledge-graph node's id (`kg_nodes.id`, `superseded_by`, an
    /// edge's ends, `covered_by_node_id`).
    NodeId
);
id_type!(
    /// A knowledge-graph edge's id (`kg_edges.id`).
    EdgeId
);
id_type!(
    /// A concept element's id within its session, as the methodology names
    /// it (`concept_elements.element_id`, e.g. `e0`).
    ElementId
);
id_type!(
    /// A scoring row's id (`scoring_history.id`).
    ScoringId
);
id_type!(
    /// A canonical slot's id (`canonical_slots.id`, `slot_…`).
    SlotId
);
id_type!(
    /// A canonical edge's id (`canonical_edges.id`, `cedge_…`).
    CanonicalEdgeId
);
id_type!(
    /// A qualitative-signal row's id (`qualitative_signals.id`).
    SignalId
);
