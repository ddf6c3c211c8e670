//! `Stance`: a node's polarity, `kg_nodes.stance`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether the participant is for, against or neutral about what a node
/// names. Stored as the integer the Python system writes (−1, 0, 1; the
/// database holds the column to those three by a CHECK); serialises as
/// that integer. The Python system no longer extracts it and writes 0,
/// so `Neutral` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i32", db_type = "Integer")]
pub enum Stance {
    /// Against (−1).
    #[sea_orm(num_value = -1)]
    Negative,
    /// Neither (0).
    #[default]
    #[sea_orm(num_value = 0)]
    Neutral,
    /// For (1).
    #[sea_orm(num_value = 1)]
    Positive,
}

impl Stance {
    /// The integer it is stored as.
    #[must_use]
    pub fn as_i32(self) -> i32 {
        match self {
            Self::Negative => -1,
            Self::Neutral => 0,
            Self::Positive => 1,
        }
    }

    /// The stance stored as `value`, if it is one.
    #[must_use]
    pub fn from_i32(value: i32) -> Option<Self> {
        match value {
            -1 => Some(Self::Negative),
            0 => Some(Self::Neutral),
            1 => Some(Self::Positive),
            _ => None,
        }
    }
}

impl Serialize for Stance {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.as_i32())
    }
}

impl<'de> Deserialize<'de> for Stance {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i32::deserialize(deserializer)?;
        Self::from_i32(value)
            .ok_or_else(|| serde::de::Error::custom(format!("a stance is -1, 0 or 1, not {value}")))
    }
}
