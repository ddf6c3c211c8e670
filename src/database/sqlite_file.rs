//! Checks on a SQLite file before and just after it is opened: that it is a
//! regular file (its metadata), a database (header), whole (page count),
//! and that it can be written (`access(2)`, then a probe). None of them
//! changes an existing file.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::config::wal_path;
use crate::error::{Error, FileKind, Result};

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Makes sure a file path can hold a SQLite database without changing an
/// existing file: what is there must be a regular file (judged from its
/// metadata, before anything opens it) holding a database (or empty); a
/// missing one gets its parent directories when it may be created.
pub(crate) fn prepare(path: &Path, create: bool) -> Result<()> {
    if !existing_regular_file(path)? {
        if create {
            create_parent_directories(path)?;
            create_private_file(path);
        }
        return Ok(());
    }
    let read_error = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let mut file = open_without_blocking(path).map_err(read_error)?;
    // What was opened is judged again: the path may have been replaced
    // after its metadata was read.
    let metadata = file.metadata().map_err(read_error)?;
    if let Some(kind) = special_kind(metadata.file_type()) {
        return Err(not_a_regular_file(path, kind));
    }
    let not_a_database = |reason: &str| Error::NotADatabase {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let mut header = Vec::with_capacity(100);
    file.by_ref()
        .take(100)
        .read_to_end(&mut header)
        .map_err(read_error)?;
    if header.is_empty() {
        return Ok(());
    }
    if header.len() < SQLITE_HEADER.len() {
        return Err(not_a_database("it is shorter than a SQLite header"));
    }
    if header[..SQLITE_HEADER.len()] != SQLITE_HEADER[..] {
        return Err(not_a_database("its header is not `SQLite format 3`"));
    }
    // The length is read after the header: another process creating the
    // file may write its first page between the two, and a length read
    // before would then look short.
    let file_len = file.metadata().map_err(read_error)?.len();
    check_not_truncated(path, &header, file_len)
}

/// Whether a regular file is at `path` (through symbolic links), from its
/// metadata alone: nothing is opened. `false` when nothing is there (or a
/// parent is not a directory: creating the parents then says precisely
/// what is in the way).
///
/// # Errors
/// [`Error::NotARegularFile`] for a directory, FIFO, socket or device (or
/// a symbolic link to one), [`Error::ReadFile`] when the metadata cannot be
/// read.
pub(crate) fn existing_regular_file(path: &Path) -> Result<bool> {
    match std::fs::metadata(path) {
        Ok(metadata) => match special_kind(metadata.file_type()) {
            None => Ok(true),
            Some(kind) => Err(not_a_regular_file(path, kind)),
        },
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(source) => Err(Error::ReadFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// What a file of type `file_type` is, when it is not a regular file.
fn special_kind(file_type: std::fs::FileType) -> Option<FileKind> {
    if file_type.is_file() {
        return None;
    }
    if file_type.is_dir() {
        return Some(FileKind::Directory);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return Some(FileKind::Fifo);
        }
        if file_type.is_socket() {
            return Some(FileKind::Socket);
        }
        if file_type.is_char_device() {
            return Some(FileKind::CharacterDevice);
        }
        if file_type.is_block_device() {
            return Some(FileKind::BlockDevice);
        }
    }
    Some(FileKind::Other)
}

/// [`Error::NotARegularFile`] for `path`, with where it leads when it is a
/// symbolic link.
fn not_a_regular_file(path: &Path, kind: FileKind) -> Error {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let link_target = is_link
        .then(|| std::fs::canonicalize(path).or_else(|_| std::fs::read_link(path)))
        .and_then(std::result::Result::ok);
    Error::NotARegularFile {
        path: path.to_path_buf(),
        kind,
        link_target,
    }
}

/// Opens `path` for reading without waiting: on Unix with `O_NONBLOCK`, so
/// that a FIFO put there after its type was checked cannot hold the caller
/// (the flag changes nothing for a regular file).
fn open_without_blocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// Fails when the header promises more pages than the file holds. The
/// header's page count is trusted only when SQLite marked it valid (bytes
/// 92..96 equal the change counter, bytes 24..28), and only when no WAL is
/// beside the file: a checkpoint interrupted by a crash may leave the file
/// short, and the WAL then completes it.
fn check_not_truncated(path: &Path, header: &[u8], file_len: u64) -> Result<()> {
    if header.len() < 100 {
        return Err(Error::DamagedFile {
            path: path.to_path_buf(),
            reason: "it ends inside the 100-byte database header".into(),
        });
    }
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(word(28));
    let count_is_valid = word(92) == word(24);
    // SQLite keeps the WAL beside the file a symlink points to.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let wal_has_frames = std::fs::metadata(wal_path(&real)).is_ok_and(|m| m.len() > 0);
    if count_is_valid && !wal_has_frames && file_len < pages * page_size {
        return Err(Error::DamagedFile {
            path: path.to_path_buf(),
            reason: format!(
                "truncated: its header counts {pages} pages of {page_size} bytes, but the file holds {file_len} bytes"
            ),
        });
    }
    Ok(())
}

/// Creates the missing parent directories of `path`, each readable by
/// this user only (0700 whatever the umask); existing ones keep their
/// modes.
fn create_parent_directories(path: &Path) -> Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    create_private_directories(parent)
}

/// [`migration::location::create_private_directories`], its error typed.
pub(crate) fn create_private_directories(directory: &Path) -> Result<()> {
    migration::location::create_private_directories(directory).map_err(|source| {
        Error::CreateDirectory {
            path: PathBuf::from(directory),
            source,
        }
    })
}

/// [`migration::location::create_private_file`]. When the file cannot be
/// created, SQLite's own attempt reports why (see `explain_open_failure`).
fn create_private_file(path: &Path) {
    if let Err(err) = migration::location::create_private_file(path) {
        tracing::debug!(path = %path.display(), error = %err, "cannot pre-create the database file");
    }
}

/// Whether group or others may read or write the file at `path`, and its
/// mode (permission bits) if so. `None` also when it cannot be read, or
/// off Unix.
pub(crate) fn shared_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o066 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Makes a change and rolls it back, so that a database that cannot be
/// written fails at startup rather than at its first write. (Taking the
/// write lock alone is not enough: in WAL mode SQLite grants it to a
/// connection that opened a read-only file.) `writer` is a pool of one, so
/// the three statements run on one connection.
pub(crate) async fn probe_writable(
    writer: &DatabaseConnection,
    path: &Path,
    busy_timeout: std::time::Duration,
) -> Result<()> {
    // Without waiting: another process holding the write lock says nothing
    // about permissions, and opening must not wait for it.
    let _ = super::set_busy_timeout(writer, std::time::Duration::ZERO).await;
    let mut probe = writer.execute_unprepared("BEGIN IMMEDIATE").await;
    if probe.is_ok() {
        probe = writer
            .execute_unprepared("CREATE TABLE interview_write_probe (x)")
            .await;
        // Undoes the probe; fails harmlessly if BEGIN did not happen.
        let _ = writer.execute_unprepared("ROLLBACK").await;
    }
    super::set_busy_timeout(writer, busy_timeout).await?;
    match probe.map_err(Error::from) {
        Ok(_) => Ok(()),
        // Another process is writing: the first real write will tell.
        Err(Error::Busy(_)) => Ok(()),
        Err(Error::ReadOnly(err)) => Err(Error::ReadOnlyLocation {
            path: path.to_path_buf(),
            reason: err.to_string(),
        }),
        Err(err) => Err(err),
    }
}

/// Whether this module could write the SQLite database at `path` (an
/// existing file), asked without writing anything: the file, its `-wal`
/// and `-shm` where they exist, and their directory where either is
/// missing (SQLite creates them, and in WAL mode cannot even open the file
/// without its `-shm`). Asked with `access(2)`, which answers as a write
/// would: an immutable file (`chattr +i`) or a read-only mount refuses
/// even root, and permission bits refuse others. Beside the file a
/// symbolic link points to, where SQLite keeps them.
///
/// This is the one meaning of "cannot be written": opening refuses such a
/// database ([`Database::connect`](super::Database::connect), and so
/// `init`) and the health report calls it unhealthy (`writable: false`),
/// with the same error.
///
/// # Errors
/// [`Error::ReadOnlyLocation`] saying which of them refuses, and why.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let unwritable = |reason: String| Error::ReadOnlyLocation {
        path: path.to_path_buf(),
        reason,
    };
    may_write(&real).map_err(|err| unwritable(format!("the file refuses writing ({err})")))?;
    let directory = real
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for suffix in ["-wal", "-shm"] {
        let mut companion = real.as_os_str().to_owned();
        companion.push(suffix);
        let companion = PathBuf::from(companion);
        if std::fs::symlink_metadata(&companion).is_ok() {
            may_write(&companion).map_err(|err| {
                unwritable(format!("`{}` refuses writing ({err})", companion.display()))
            })?;
        } else {
            may_write(directory).map_err(|err| {
                unwritable(format!(
                    "its directory `{}` does not allow creating its `{suffix}` file ({err})",
                    directory.display()
                ))
            })?;
        }
    }
    Ok(())
}

/// Whether the file or directory at `path` may be written, by
/// `access(path, W_OK)`: nothing is opened or changed.
#[cfg(unix)]
#[allow(unsafe_code)]
fn may_write(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL byte in the path")
    })?;
    // SAFETY: `path` is NUL-terminated and outlives the call, which only
    // reads it.
    let answer = unsafe { libc::access(path.as_ptr(), libc::W_OK) };
    if answer == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Off Unix there is no `access(2)`: SQLite's own attempt (the write
/// probe) is the only judge.
#[cfg(not(unix))]
fn may_write(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Why the database at `path` cannot be written, if it cannot: for an
/// existing file [`check_writable`]'s answer, for a missing one whether
/// its directory refuses creating it. Asked after SQLite failed to open
/// it, without creating anything.
pub(crate) fn why_it_cannot_be_written(path: &Path) -> Option<Error> {
    if std::fs::symlink_metadata(path).is_ok() {
        return check_writable(path).err();
    }
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let refused = may_write(directory)
        .err()
        // A missing directory is not a read-only one: SQLite's error stands.
        .filter(|err| err.kind() != std::io::ErrorKind::NotFound);
    refused.map(|err| Error::ReadOnlyLocation {
        path: path.to_path_buf(),
        reason: format!(
            "its directory `{}` does not allow creating the database file ({err})",
            directory.display()
        ),
    })
}

/// The file behind a `sqlite::memory:` database: in a directory of its own
/// under the system's temporary directory (0700), itself 0600, and
/// removed with everything in it when dropped (the last handle on the
/// database is gone).
///
/// SQLite's own in-memory databases share one cache between connections,
/// where tables are locked instead of versioned: a reader waits for an open
/// write transaction and the writer for an open read snapshot — in the same
/// task, forever. A private file in WAL mode behaves exactly as a database
/// file does.
#[derive(Debug)]
pub(crate) struct PrivateFile {
    directory: PathBuf,
    path: PathBuf,
}

impl PrivateFile {
    pub(crate) fn create() -> Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let directory = std::env::temp_dir().join(format!(
            "interview-memory-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&directory)
            .map_err(|source| Error::CreateDirectory {
                path: directory.clone(),
                source,
            })?;
        let path = directory.join("memory.db");
        create_private_file(&path);
        Ok(Self { directory, path })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}
