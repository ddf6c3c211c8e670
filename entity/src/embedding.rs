//! `Embedding`: a node's or slot's sentence embedding, as the Python system
//! stores it.

use std::fmt;

use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError, TryGetable, Value};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many values an embedding holds: the dimension of the Python
/// system's model, all-MiniLM-L6-v2.
pub const EMBEDDING_DIMENSIONS: usize = 384;

/// How many bytes an embedding takes when stored.
pub const EMBEDDING_BYTES: usize = EMBEDDING_DIMENSIONS * 4;

/// A sentence embedding: exactly [`EMBEDDING_DIMENSIONS`] finite `f32`
/// values. Stored as their little-endian bytes — numpy's `tobytes()` of a
/// float32 array on the machines the Python system runs on — in a BLOB on
/// SQLite and a `bytea` on PostgreSQL, so the bytes round-trip unchanged
/// between the two systems. Serialises (serde) as a list of numbers.
#[derive(Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

/// Why a list of values or bytes is not an [`Embedding`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddingError {
    /// Not [`EMBEDDING_DIMENSIONS`] values (or [`EMBEDDING_BYTES`] bytes).
    Length {
        /// How many values (or bytes) there were.
        found: usize,
        /// Whether `found` counts bytes.
        bytes: bool,
    },
    /// A value is NaN or infinite: its cosine with anything is undefined.
    NotFinite {
        /// Its position.
        index: usize,
    },
}

impl fmt::Display for EmbeddingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length {
                found,
                bytes: false,
            } => write!(
                f,
                "an embedding has {EMBEDDING_DIMENSIONS} values, not {found}"
            ),
            Self::Length { found, bytes: true } => write!(
                f,
                "a stored embedding has {EMBEDDING_BYTES} bytes, not {found}"
            ),
            Self::NotFinite { index } => {
                write!(f, "embedding value {index} is not a finite number")
            }
        }
    }
}

impl std::error::Error for EmbeddingError {}

impl Embedding {
    /// The embedding of these values.
    ///
    /// # Errors
    /// [`EmbeddingError`] unless there are [`EMBEDDING_DIMENSIONS`] finite
    /// values.
    pub fn new(values: Vec<f32>) -> Result<Self, EmbeddingError> {
        if values.len() != EMBEDDING_DIMENSIONS {
            return Err(EmbeddingError::Length {
                found: values.len(),
                bytes: false,
            });
        }
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(EmbeddingError::NotFinite { index });
        }
        Ok(Self(values))
    }

    /// The embedding stored as `bytes` (little-endian float32).
    ///
    /// # Errors
    /// [`EmbeddingError`] unless there are [`EMBEDDING_BYTES`] bytes making
    /// finite values.
    pub fn from_le_bytes(bytes: &[u8]) -> Result<Self, EmbeddingError> {
        if bytes.len() != EMBEDDING_BYTES {
            return Err(EmbeddingError::Length {
                found: bytes.len(),
                bytes: true,
            });
        }
        let values = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Self::new(values)
    }

    /// The bytes it is stored as.
    #[must_use]
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Its values.
    #[must_use]
    pub fn values(&self) -> &[f32] {
        &self.0
    }

    /// Its Euclidean norm, computed in `f64`.
    #[must_use]
    pub fn norm(&self) -> f64 {
        self.0
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
    }

    /// The cosine similarity of two embeddings, by the Python system's
    /// formula `a·b / (|a| |b| + 1e-8)` (a zero vector has similarity 0
    /// with everything instead of NaN), computed in `f64` where numpy
    /// computes in `f32`: a cosine within about 1e-6 of a threshold may
    /// fall on the other side of it than in Python.
    #[must_use]
    pub fn cosine(&self, other: &Self) -> f64 {
        let dot: f64 = self
            .0
            .iter()
            .zip(&other.0)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        dot / (self.norm() * other.norm() + 1e-8)
    }
}

impl fmt::Debug for Embedding {
    // 384 numbers in every debug line of a node help nobody.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Embedding([{:?}, {:?}, … {} values])",
            self.0[0],
            self.0[1],
            self.0.len()
        )
    }
}

impl TryFrom<Vec<f32>> for Embedding {
    type Error = EmbeddingError;

    fn try_from(values: Vec<f32>) -> Result<Self, EmbeddingError> {
        Self::new(values)
    }
}

impl Serialize for Embedding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Embedding {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let values = Vec::<f32>::deserialize(deserializer)?;
        Self::new(values).map_err(serde::de::Error::custom)
    }
}

impl From<Embedding> for Value {
    fn from(embedding: Embedding) -> Self {
        Value::Bytes(Some(embedding.to_le_bytes()))
    }
}

impl From<&Embedding> for Value {
    fn from(embedding: &Embedding) -> Self {
        Value::Bytes(Some(embedding.to_le_bytes()))
    }
}

impl Nullable for Embedding {
    fn null() -> Value {
        Value::Bytes(None)
    }
}

impl ValueType for Embedding {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        match v {
            Value::Bytes(Some(bytes)) => Self::from_le_bytes(&bytes).map_err(|_| ValueTypeErr),
            _ => Err(ValueTypeErr),
        }
    }

    fn type_name() -> String {
        "Embedding".to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::Bytes
    }

    fn column_type() -> ColumnType {
        ColumnType::Blob
    }
}

impl TryGetable for Embedding {
    fn try_get_by<I: ColIdx>(res: &QueryResult, index: I) -> Result<Self, TryGetError> {
        let bytes = <Vec<u8> as TryGetable>::try_get_by(res, index)?;
        Self::from_le_bytes(&bytes).map_err(|err| TryGetError::DbErr(DbErr::Type(err.to_string())))
    }
}
