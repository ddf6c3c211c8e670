//! SQL text built once per backend. The statements a turn runs differ
//! from turn to turn only in their values; building the same text through
//! sea-query every turn was a measurable part of a turn's cost.

use std::sync::OnceLock;

use sea_orm::DbBackend;

/// SQL text by backend (SQLite, PostgreSQL), built on first use.
pub(crate) type CachedSql = [OnceLock<String>; 2];

/// An empty [`CachedSql`], for a `static`.
pub(crate) const fn new() -> CachedSql {
    [OnceLock::new(), OnceLock::new()]
}

/// The text of `cache` for `backend`, built by `build` the first time.
/// `build` must give the same text every time for one backend.
pub(crate) fn cached(
    backend: DbBackend,
    cache: &'static CachedSql,
    build: impl FnOnce() -> String,
) -> &'static str {
    match try_cached(
        backend,
        cache,
        || Ok::<_, std::convert::Infallible>(build()),
    ) {
        Ok(sql) => sql,
        Err(never) => match never {},
    }
}

/// [`cached`] for a `build` that can fail: a failure is returned and
/// nothing is cached.
pub(crate) fn try_cached<E>(
    backend: DbBackend,
    cache: &'static CachedSql,
    build: impl FnOnce() -> Result<String, E>,
) -> Result<&'static str, E> {
    let slot = &cache[usize::from(backend == DbBackend::Postgres)];
    if let Some(sql) = slot.get() {
        return Ok(sql);
    }
    let built = build()?;
    Ok(slot.get_or_init(|| built))
}
