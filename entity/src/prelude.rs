//! The entities under the names services usually give them.

pub use crate::canonical_edge::Entity as CanonicalEdge;
pub use crate::canonical_slot::Entity as CanonicalSlot;
pub use crate::concept_element::Entity as ConceptElement;
pub use crate::kg_edge::Entity as KgEdge;
pub use crate::kg_node::Entity as KgNode;
pub use crate::qualitative_signal::Entity as QualitativeSignal;
pub use crate::scoring_history::Entity as ScoringHistory;
pub use crate::session::Entity as Session;
pub use crate::session_erasure::Entity as SessionErasure;
pub use crate::slot_mapping::Entity as SlotMapping;
pub use crate::utterance::Entity as Utterance;
