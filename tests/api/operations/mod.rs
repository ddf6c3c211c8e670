//! Operating a study: online backups and copies between backends.

mod backup;
mod copy;
mod hostile;
mod study;
