//! Files the module writes beside a database — backups, new copies —
//! under a temporary name first, never over a file that is there, never
//! over one of the database's own files; and the leftovers of runs that
//! were killed while writing one.
//!
//! A backup or a copy writes `.interview-<pid>-<n>.partial` (and SQLite
//! its `-journal`, `-wal`, `-shm`) and removes it when it fails or is
//! dropped. A process killed meanwhile (SIGKILL, a power cut) cannot: the
//! file stays, a whole or partial copy of the study. Such a leftover is
//! *stale* when the process `<pid>` no longer exists, or is this process
//! and the file is not one it is writing now (a pid reused after a
//! reboot). A leftover of another live process is left alone: it may be a
//! backup being written now (and a pid reused by an unrelated program
//! keeps it until that program ends — [`clean`] then reports it as kept).
//! The next backup or copy into a directory removes its stale leftovers
//! first; [`clean`] does it on demand.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::error::{Error, Result};

/// The prefix and suffix of a temporary file's name.
const PREFIX: &str = ".interview-";
const SUFFIX: &str = ".partial";
/// The files SQLite keeps beside a database.
const SIDE_FILES: [&str; 3] = ["-journal", "-wal", "-shm"];

/// The temporary files this process is writing now.
fn in_progress() -> &'static Mutex<HashSet<PathBuf>> {
    static IN_PROGRESS: std::sync::OnceLock<Mutex<HashSet<PathBuf>>> = std::sync::OnceLock::new();
    IN_PROGRESS.get_or_init(Mutex::default)
}

/// A temporary copy of a study found in a directory: a
/// `.interview-<pid>-<n>.partial` file, or the `-journal`, `-wal` or
/// `-shm` SQLite kept beside one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leftover {
    /// The file.
    pub path: PathBuf,
    /// The process that wrote it.
    pub pid: u32,
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether nobody is writing it: its process is gone, or it is this
    /// process and the file is not one it is writing. A stale leftover is
    /// removed by the next backup or copy into its directory, and by
    /// [`clean`].
    pub stale: bool,
}

/// What [`clean`] did, printed by `interview-db clean` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct CleanReport {
    /// The directory cleaned.
    pub directory: PathBuf,
    /// The stale leftovers removed.
    pub removed: Vec<Leftover>,
    /// The leftovers of live processes, left alone (a backup or copy
    /// being written now).
    pub kept: Vec<Leftover>,
}

/// The pid in a temporary file's name (`.interview-<pid>-<n>.partial`,
/// optionally followed by `-journal`, `-wal` or `-shm`), if it is one.
fn owner_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let base = SIDE_FILES
        .iter()
        .find_map(|side| rest.strip_suffix(side))
        .unwrap_or(rest);
    let (pid, n) = base.strip_suffix(SUFFIX)?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok().filter(|pid| *pid > 0)
}

/// Whether the process `pid` exists (a zombie counts), asked with
/// `kill(pid, 0)`, which sends nothing. `EPERM` means it exists.
#[cfg(unix)]
#[allow(unsafe_code)]
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process could be signalled.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Off Unix the question cannot be asked: every process is taken to exist,
/// so nothing is removed automatically.
#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    true
}

/// The temporary file `path` belongs to: itself, or the one a side file
/// of SQLite's sits beside.
fn main_file(path: &Path) -> PathBuf {
    let text = path.as_os_str().to_string_lossy();
    SIDE_FILES
        .iter()
        .find_map(|side| text.strip_suffix(side))
        .map_or_else(|| path.to_path_buf(), PathBuf::from)
}

/// The temporary copies in `directory` (a backup's or a copy's
/// leftovers), each said stale or not (see [`Leftover::stale`]). Reads
/// the directory only.
///
/// # Errors
/// [`Error::Cleanup`] when the directory cannot be read.
pub fn leftover_copies(directory: &Path) -> Result<Vec<Leftover>> {
    let listing = if directory.as_os_str().is_empty() {
        Path::new(".")
    } else {
        directory
    };
    let failed = |source| Error::Cleanup {
        path: directory.to_path_buf(),
        source,
    };
    let writing = in_progress()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(listing).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let Some(pid) = entry.file_name().to_str().and_then(owner_of) else {
            continue;
        };
        let path = directory.join(entry.file_name());
        let stale = if pid == std::process::id() {
            !writing.contains(&main_file(&path))
        } else {
            !process_exists(pid)
        };
        found.push(Leftover {
            bytes: entry.metadata().map_or(0, |m| m.len()),
            path,
            pid,
            stale,
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Removes the stale temporary copies in `directory` — the leftovers of
/// backups and copies whose process was killed — and says what it removed
/// and what it left (a live process's, being written now).
///
/// # Errors
/// [`Error::Cleanup`] when the directory cannot be read or a leftover
/// cannot be removed.
pub fn clean(directory: &Path) -> Result<CleanReport> {
    let (removed, kept): (Vec<_>, Vec<_>) = leftover_copies(directory)?
        .into_iter()
        .partition(|leftover| leftover.stale);
    for leftover in &removed {
        match std::fs::remove_file(&leftover.path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Cleanup {
                    path: leftover.path.clone(),
                    source,
                });
            }
        }
    }
    if !removed.is_empty() {
        sync_directory(&directory.join("x"));
    }
    Ok(CleanReport {
        directory: directory.to_path_buf(),
        removed,
        kept,
    })
}

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
        // What killed runs left here goes first (best effort: a
        // directory that cannot be cleaned can still take the copy).
        let directory = destination.parent().unwrap_or(Path::new(""));
        match clean(directory) {
            Ok(report) if !report.removed.is_empty() => {
                let removed: Vec<_> = report.removed.iter().map(|l| l.path.display()).collect();
                tracing::info!(?removed, "removed the temporary copies of killed runs");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "leftover temporary copies stay"),
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        // A name a killed process left behind (same pid, reused) that
        // could not be removed is skipped, not reused.
        let mut attempts = 0;
        loop {
            let path = destination.with_file_name(format!(
                "{PREFIX}{}-{}{SUFFIX}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            // Said to be in progress before it exists, so that a clean-up
            // of this process never takes it for a leftover.
            in_progress()
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(path.clone());
            match options.open(&path) {
                Ok(_) => return Ok(Self { path: Some(path) }),
                Err(err) => {
                    forget(&path);
                    if err.kind() != std::io::ErrorKind::AlreadyExists || attempts >= 100 {
                        return Err(err);
                    }
                    attempts += 1;
                }
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
        forget(&temporary);
        sync_directory(destination);
        Ok(())
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
            for suffix in SIDE_FILES {
                let mut side = path.as_os_str().to_owned();
                side.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(side));
            }
            forget(path);
        }
    }
}

/// `path` is no longer being written by this process.
fn forget(path: &Path) {
    in_progress()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(path);
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
