//! Cosine similarity over stored embeddings, shared by the node and slot
//! look-ups: rows are read as (id, bytes) and compared without building
//! an entity per row.

use entity::{EMBEDDING_BYTES, Embedding};

use crate::error::{Error, Result};

/// Fails with [`Error::InvalidInput`] unless `threshold` is a number in
/// [−1, 1] (a cosine's range).
pub(crate) fn check_threshold(threshold: f64) -> Result<()> {
    if (-1.0..=1.0).contains(&threshold) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "similarity threshold {threshold} is not a number in [-1, 1]"
        )))
    }
}

/// The query embedding, prepared once per look-up.
pub(crate) struct Query<'a> {
    values: &'a [f32],
    norm: f64,
}

impl<'a> Query<'a> {
    pub(crate) fn new(embedding: &'a Embedding) -> Self {
        Self {
            values: embedding.values(),
            norm: embedding.norm(),
        }
    }

    /// The cosine of the query with the embedding stored as `bytes`, as
    /// [`Embedding::cosine`] computes it; `None` for bytes that are not an
    /// embedding (another length; NaN or infinite values), which such a
    /// row cannot match.
    pub(crate) fn cosine(&self, bytes: &[u8]) -> Option<f64> {
        if bytes.len() != EMBEDDING_BYTES {
            return None;
        }
        let mut dot = 0.0f64;
        let mut norm = 0.0f64;
        for (chunk, &q) in bytes.chunks_exact(4).zip(self.values) {
            let v = f64::from(f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
            dot += v * f64::from(q);
            norm += v * v;
        }
        let cosine = dot / (self.norm * norm.sqrt() + 1e-8);
        cosine.is_finite().then_some(cosine)
    }
}

/// The ids of `rows` whose cosine with `query` is at least `threshold`,
/// best first (ties in the rows' order).
pub(crate) fn best_first<I>(
    query: &Embedding,
    rows: impl IntoIterator<Item = (I, Vec<u8>)>,
    threshold: f64,
) -> Vec<(I, f64)> {
    let query = Query::new(query);
    let mut matches: Vec<(I, f64)> = rows
        .into_iter()
        .filter_map(|(id, bytes)| {
            let cosine = query.cosine(&bytes)?;
            (cosine >= threshold).then_some((id, cosine))
        })
        .collect();
    // Stable: equal similarities keep the rows' (oldest-first) order.
    matches.sort_by(|a, b| b.1.total_cmp(&a.1));
    matches
}

/// The `rows` read for `matches` (from [`best_first`]), put back in the
/// matches' order, each with its similarity; a match whose row is gone
/// is left out.
pub(crate) fn in_match_order<I: PartialEq, R>(
    matches: Vec<(I, f64)>,
    mut rows: Vec<R>,
    id_of: impl Fn(&R) -> &I,
) -> Vec<(R, f64)> {
    matches
        .into_iter()
        .filter_map(|(id, similarity)| {
            let at = rows.iter().position(|row| *id_of(row) == id)?;
            Some((rows.swap_remove(at), similarity))
        })
        .collect()
}

/// `text` folded for caseless comparison: every character upper-cased,
/// then lower-cased, so that `ß` matches `SS`, `ς` matches `Σ` and `ﬁ`
/// matches `FI` as well as `É` matches `é` — what SQLite's ASCII-only
/// `LOWER` and PostgreSQL's locale-dependent `lower` do not do alike.
pub(crate) fn fold_case(text: &str) -> String {
    text.chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
#[allow(clippy::expect_used)] // a failed expectation is the test failing
mod tests {
    use super::*;

    fn embedding(first: f32, second: f32) -> Embedding {
        let mut values = vec![0.0; entity::EMBEDDING_DIMENSIONS];
        values[0] = first;
        values[1] = second;
        Embedding::new(values).expect("an embedding")
    }

    #[test]
    fn the_cosine_over_bytes_is_the_embeddings_cosine() {
        let a = embedding(1.0, 2.0);
        let b = embedding(2.0, 1.0);
        let over_bytes = Query::new(&a).cosine(&b.to_le_bytes()).expect("a cosine");
        assert!((over_bytes - a.cosine(&b)).abs() < 1e-12);
        assert!((over_bytes - 0.8).abs() < 1e-6, "{over_bytes}");
    }

    #[test]
    fn matches_come_best_first_and_below_the_threshold_not_at_all() {
        let query = embedding(1.0, 0.0);
        let rows = vec![
            ("far", embedding(0.0, 1.0).to_le_bytes()),
            ("near", embedding(1.0, 0.5).to_le_bytes()),
            ("same", embedding(3.0, 0.0).to_le_bytes()),
            ("short", vec![0; 8]),
        ];
        let ids: Vec<&str> = best_first(&query, rows, 0.8)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["same", "near"]);
    }

    #[test]
    fn a_zero_vector_matches_nothing_instead_of_being_nan() {
        let query = embedding(1.0, 0.0);
        let zero = Embedding::new(vec![0.0; entity::EMBEDDING_DIMENSIONS]).expect("zero");
        assert_eq!(Query::new(&query).cosine(&zero.to_le_bytes()), Some(0.0));
    }

    #[test]
    fn caseless_folding_covers_unicode_not_only_ascii() {
        for (a, b) in [
            ("Crème Brûlée", "CRÈME BRÛLÉE"),
            ("Straße", "STRASSE"),
            ("ΣΟΦΊΑ", "σοφία"),
            ("Ölçü", "ÖLÇÜ"),
            ("Офис", "оФИС"),
        ] {
            assert_eq!(fold_case(a), fold_case(b), "{a} / {b}");
        }
        assert_ne!(fold_case("coffee"), fold_case("café"));
    }
}
