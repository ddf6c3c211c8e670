//! The content checksum a copy proves itself with, computed the same way
//! on both sides.

use sea_orm::{EntityTrait, Iterable, ModelTrait, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A table's rows and their content checksum: the wrapping sum of the first
/// 128 bits of each row's SHA-256. A row is hashed as its entity model's
/// values, column by column, each with its type and its exact content:
/// floats by their bits (so NaN, ±∞, −0 and NULL all differ), timestamps
/// to the nanosecond, text and JSON byte for byte (JSON as serde_json
/// writes the decoded document: keys sorted, so equal documents hash
/// equally whatever order a backend keeps). The entity decodes a row the
/// same way on SQLite and PostgreSQL, so equal rows hash equally on both.
/// A sum does not depend on the order rows are read in: the two backends
/// sort text ids by different collations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableChecksum {
    rows: u64,
    sum: u128,
}

impl TableChecksum {
    /// Adds one row of `E`; returns how many bytes were hashed (about the
    /// row's size).
    pub(crate) fn add<E: EntityTrait>(&mut self, row: &E::Model) -> usize {
        let mut bytes = Vec::with_capacity(256);
        for column in E::Column::iter() {
            encode(&mut bytes, &row.get(column));
        }
        self.add_bytes(&bytes);
        bytes.len()
    }

    fn add_bytes(&mut self, bytes: &[u8]) {
        let digest = Sha256::digest(bytes);
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(first));
        self.rows += 1;
    }

    /// How many rows were added.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The checksum as 32 hexadecimal digits.
    #[must_use]
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// Appends `value` to a row's bytes: a type tag, then the content (text
/// with its length, so that no two rows share an encoding).
fn encode(bytes: &mut Vec<u8>, value: &Value) {
    let text = |bytes: &mut Vec<u8>, tag: u8, text: &[u8]| {
        bytes.push(tag);
        bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
        bytes.extend_from_slice(text);
    };
    match value {
        Value::Bool(Some(b)) => bytes.extend_from_slice(&[1, u8::from(*b)]),
        Value::TinyInt(Some(n)) => integer(bytes, i128::from(*n)),
        Value::SmallInt(Some(n)) => integer(bytes, i128::from(*n)),
        Value::Int(Some(n)) => integer(bytes, i128::from(*n)),
        Value::BigInt(Some(n)) => integer(bytes, i128::from(*n)),
        Value::TinyUnsigned(Some(n)) => integer(bytes, i128::from(*n)),
        Value::SmallUnsigned(Some(n)) => integer(bytes, i128::from(*n)),
        Value::Unsigned(Some(n)) => integer(bytes, i128::from(*n)),
        Value::BigUnsigned(Some(n)) => integer(bytes, i128::from(*n)),
        Value::Float(Some(x)) => float(bytes, f64::from(*x)),
        Value::Double(Some(x)) => float(bytes, *x),
        Value::String(Some(s)) => text(bytes, 4, s.as_bytes()),
        Value::Char(Some(c)) => text(bytes, 4, c.encode_utf8(&mut [0; 4]).as_bytes()),
        Value::Json(Some(json)) => text(bytes, 5, json.to_string().as_bytes()),
        Value::Bytes(Some(blob)) => text(bytes, 8, blob),
        Value::ChronoDateTime(Some(at)) => {
            let at = at.and_utc();
            bytes.push(6);
            bytes.extend_from_slice(&at.timestamp().to_le_bytes());
            bytes.extend_from_slice(&at.timestamp_subsec_nanos().to_le_bytes());
        }
        // Every NULL alike: a backend has one NULL whatever the type.
        other if is_null(other) => bytes.push(0),
        // No column of the schema has another type; should one come, its
        // debug form still tells values apart.
        other => text(bytes, 7, format!("{other:?}").as_bytes()),
    }
}

fn integer(bytes: &mut Vec<u8>, n: i128) {
    bytes.push(2);
    bytes.extend_from_slice(&n.to_le_bytes());
}

fn float(bytes: &mut Vec<u8>, x: f64) {
    bytes.push(3);
    bytes.extend_from_slice(&x.to_bits().to_le_bytes());
}

/// Whether `value` is a NULL of any type.
pub(crate) fn is_null(value: &Value) -> bool {
    *value == value.as_null()
}

impl Serialize for TableChecksum {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.hex())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::Value;

    use super::{TableChecksum, encode};

    fn checksum_of(rows: &[Vec<Value>]) -> TableChecksum {
        let mut checksum = TableChecksum::default();
        for row in rows {
            let mut bytes = Vec::new();
            for value in row {
                encode(&mut bytes, value);
            }
            checksum.add_bytes(&bytes);
        }
        checksum
    }

    fn row(score: Option<f64>) -> Vec<Value> {
        vec![Value::String(Some("row-1".into())), Value::Double(score)]
    }

    #[test]
    fn the_checksum_does_not_depend_on_row_order_but_on_every_bit() {
        let rows: Vec<Vec<Value>> = [1.0, 0.5, 0.25].map(|x| row(Some(x))).into();
        let reversed: Vec<Vec<Value>> = rows.iter().rev().cloned().collect();
        assert_eq!(checksum_of(&rows), checksum_of(&reversed));
        assert_eq!(checksum_of(&rows).rows(), 3);
        let one_bit_more = f64::from_bits(0.25_f64.to_bits() + 1);
        let changed: Vec<Vec<Value>> = [1.0, 0.5, one_bit_more].map(|x| row(Some(x))).into();
        assert_ne!(checksum_of(&rows).hex(), checksum_of(&changed).hex());
    }

    /// serde_json writes every non-finite float as `null`: hashing rows as
    /// JSON made a copy that turned NaN into NULL look verified.
    #[test]
    fn nan_infinities_negative_zero_and_null_all_checksum_differently() {
        let values = [
            None,
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(0.0),
            Some(-0.0),
        ];
        let sums: Vec<String> = values
            .iter()
            .map(|v| checksum_of(&[row(*v)]).hex())
            .collect();
        for (i, a) in sums.iter().enumerate() {
            for b in &sums[i + 1..] {
                assert_ne!(a, b, "{values:?}");
            }
        }
    }

    #[test]
    fn timestamps_differ_below_the_microsecond_and_text_by_its_length() {
        let at = |nanos| {
            chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                .and_then(|d| d.and_hms_nano_opt(3, 4, 5, nanos))
                .map(|t| vec![Value::ChronoDateTime(Some(t))])
                .unwrap_or_default()
        };
        assert_ne!(
            checksum_of(&[at(123_456_000)]),
            checksum_of(&[at(123_456_789)])
        );
        let split =
            |a: &str, b: &str| vec![Value::String(Some(a.into())), Value::String(Some(b.into()))];
        assert_ne!(
            checksum_of(&[split("ab", "c")]),
            checksum_of(&[split("a", "bc")])
        );
    }
}
