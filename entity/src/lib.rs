//! SeaORM entities of the interview store: one module per table of
//! `SCHEMA.md`, one per table the Python system added later
//! (`canonical_slot`, `slot_mapping`, `canonical_edge`,
//! `qualitative_signal`), and `session_erasure` (the record of an erased
//! session).
//!
//! Entities only describe tables; behaviour lives in the repositories of the
//! `interview-persistence` crate, and the schema history lives in the
//! `migration` crate, which never imports these types.
//!
//! Conventions shared by every table:
//! - ids are UUID strings stored as text, as the Python system stores
//!   them, each with a type of its own ([`SessionId`], [`NodeId`], …: see
//!   [`ids`]);
//! - timestamps are UTC [`DateTime`](sea_orm::prelude::DateTime) values
//!   (`NaiveDateTime`), which SQLite stores as `YYYY-MM-DD HH:MM:SS[.fff]`
//!   text — the same form the Python system and the database defaults
//!   write, so every row of a column sorts correctly as text — and
//!   PostgreSQL as `timestamp` (without time zone, always UTC); they
//!   serialise (serde) as UTC with a `Z`, `2026-11-27T12:21:26.182211Z`
//!   ([`utc_timestamp`]), which changes nothing stored;
//! - JSON columns are [`Json`](sea_orm::prelude::Json) values, except the
//!   arrays of strings, which are [`StringList`]s;
//! - closed vocabularies are string enums stored as the text values the
//!   Python system writes, and the database holds them to a CHECK.

#![warn(missing_docs)]

pub mod canonical_edge;
pub mod canonical_slot;
pub mod concept_element;
mod embedding;
mod focus;
pub mod ids;
pub mod kg_edge;
pub mod kg_node;
pub mod qualitative_signal;
pub mod scoring_history;
pub mod session;
pub mod session_erasure;
pub mod slot_mapping;
mod stance;
mod string_list;
pub mod utc_timestamp;
pub mod utterance;

pub use embedding::{EMBEDDING_BYTES, EMBEDDING_DIMENSIONS, Embedding, EmbeddingError};
pub use focus::{FocusEntry, FocusHistory};
pub use ids::{
    CanonicalEdgeId, EdgeId, ElementId, NodeId, ScoringId, SessionId, SignalId, SlotId, UtteranceId,
};
pub use stance::Stance;
pub use string_list::StringList;

pub mod prelude;
