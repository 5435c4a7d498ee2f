//! Where a store lives. Each backend is one kind of location; today that is a
//! SQLite file.

use std::fmt;
use std::path::PathBuf;

/// A database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
}

impl Location {
    /// A SQLite file.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Location::Sqlite(path.into())
    }
}

/// The location as people see it (a file path).
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
        }
    }
}
