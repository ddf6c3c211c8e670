//! Without the `sqlite` feature there is no SQLite file to write: the
//! direct connections' API, every call refused.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::batch::{StatementBatch, WrittenRow};
use crate::config::DatabaseConfig;
use crate::error::{Error, Result};

fn unavailable() -> Error {
    Error::Unsupported("this build has no SQLite backend (feature `sqlite`)".into())
}

#[derive(Debug, Clone)]
pub(crate) struct DirectSettings;

impl DirectSettings {
    pub(crate) fn new(_: &DatabaseConfig, _: &Path) -> Self {
        Self
    }
}

#[derive(Debug)]
pub(crate) struct DirectWriter;

impl DirectWriter {
    pub(crate) async fn open(_: DirectSettings) -> Result<Self> {
        Err(unavailable())
    }

    pub(crate) fn transaction<'a>(
        &mut self,
        _: impl IntoIterator<Item = &'a StatementBatch>,
    ) -> std::result::Result<Vec<WrittenRow>, (Option<usize>, Error)> {
        Err((None, unavailable()))
    }

    pub(crate) fn set_busy_timeout(&mut self, _: Duration) -> Result<()> {
        Err(unavailable())
    }

    pub(crate) fn hold_back_the_wal(&mut self, _: Duration) {}

    pub(crate) fn wal_past_its_hard_limit(&self) -> bool {
        false
    }
}

#[derive(Debug)]
pub(crate) struct DirectReaders;

impl DirectReaders {
    pub(crate) fn new(_: DirectSettings, _: &DatabaseConfig) -> Arc<Self> {
        Arc::new(Self)
    }

    #[allow(clippy::unused_async)]
    pub(crate) async fn close(&self) {}
}
