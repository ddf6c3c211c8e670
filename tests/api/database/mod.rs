//! The database handle (`src/database/`): the one write path, the file
//! checks, checkpoints and the connections' settings.

mod checkpoint;
mod connections;
mod direct_paths;
mod postgres_errors;
mod postgres_turns;
mod sqlite_file;
mod stored_values;
mod wal_hold_back;
mod writer;
mod writer_in_place;
