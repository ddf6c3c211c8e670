//! Files the module writes beside a database — backups, new copies —
//! under a temporary name first, never over a file that is there, never
//! over one of the database's own files.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether `candidate` is the SQLite database `database` or one of the
/// files SQLite keeps beside it (`-journal`, `-wal`, `-shm`): a file
/// written there would be taken for a hot journal or a WAL of the live
/// database. Compared by real directories, so `./x/../db` is `db`.
pub(crate) fn names_database_file(database: &Path, candidate: &Path) -> bool {
    let real = |path: &Path| -> Option<PathBuf> {
        let name = path.file_name()?;
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Some(std::fs::canonicalize(parent).ok()?.join(name))
    };
    let (Some(database), Some(candidate)) = (
        std::fs::canonicalize(database)
            .ok()
            .or_else(|| real(database)),
        real(candidate),
    ) else {
        return false;
    };
    ["", "-journal", "-wal", "-shm"].iter().any(|suffix| {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        name == candidate.as_os_str()
    })
}

/// Fails unless nothing (not even a dangling link) is at `path`.
pub(crate) fn refuse_existing(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(Error::DestinationExists {
            path: path.to_path_buf(),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::Backup {
            path: path.to_path_buf(),
            reason: err.to_string(),
        }),
    }
}

/// A file being written under a temporary name beside its destination:
/// removed (with any journal SQLite left beside it) when dropped, unless
/// published.
#[derive(Debug)]
pub(crate) struct TemporaryFile {
    path: Option<PathBuf>,
}

impl TemporaryFile {
    /// Creates `.interview-<pid>-<n>.partial` beside `destination`,
    /// owner-only. The name is ASCII whatever the destination's (sqlx opens
    /// only UTF-8 paths).
    pub(crate) fn beside(destination: &Path) -> std::io::Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        if destination.file_name().is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path names no file",
            ));
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        // A name a killed process left behind (same pid, reused) is
        // skipped, not reused.
        let mut attempts = 0;
        loop {
            let path = destination.with_file_name(format!(
                ".interview-{}-{}.partial",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            match options.open(&path) {
                Ok(_) => return Ok(Self { path: Some(path) }),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Gives the file its name — without ever replacing a file that is
    /// there (a hard link fails when the name exists; `rename` would not) —
    /// and makes the new name durable.
    pub(crate) fn publish(
        mut self,
        destination: &Path,
        failed: impl Fn(String) -> Error,
    ) -> Result<()> {
        let temporary = self.path().to_path_buf();
        match std::fs::hard_link(&temporary, destination) {
            Ok(()) => {
                let _ = std::fs::remove_file(&temporary);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::DestinationExists {
                    path: destination.to_path_buf(),
                });
            }
            // A file system without hard links: check, then rename.
            Err(_) => {
                refuse_existing(destination)?;
                std::fs::rename(&temporary, destination)
                    .map_err(|err| failed(format!("cannot rename the copy: {err}")))?;
            }
        }
        self.path = None;
        sync_directory(destination);
        Ok(())
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
            for suffix in ["-journal", "-wal", "-shm"] {
                let mut side = path.as_os_str().to_owned();
                side.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(side));
            }
        }
    }
}

/// Makes a new directory entry durable (best effort: not every platform
/// can open a directory).
fn sync_directory(path: &Path) {
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(directory) = std::fs::File::open(parent) {
            let _ = directory.sync_all();
        }
    }
}
