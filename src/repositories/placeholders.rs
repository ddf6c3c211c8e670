//! Values bound in order behind numbered placeholders, for the statements
//! the repositories write by hand: the turn's extras, the config merge and
//! PostgreSQL's one-statement turn.

use sea_orm::{DbBackend, Value};

/// The larger of two values in SQL: `GREATEST` on PostgreSQL, the
/// two-argument `max` on SQLite.
pub(crate) fn greatest(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "GREATEST",
        _ => "max",
    }
}

/// Values bound in order, each given a numbered placeholder (`$n` on
/// PostgreSQL, `?n` on SQLite), so that one value can be used twice.
pub(crate) struct Placeholders {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Placeholders {
    /// No values yet.
    pub(crate) fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    /// The backend the placeholders are written for.
    pub(crate) fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Binds `value` next and returns its placeholder.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => format!("?{}", self.values.len()),
        }
    }

    /// The values, in placeholder order.
    pub(crate) fn into_values(self) -> Vec<Value> {
        self.values
    }
}
