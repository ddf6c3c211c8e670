//! The schema (`src/schema/`): taking over the files the Python module
//! made.

mod adopt;
mod adopt_hostile;
