//! What can go wrong with a store, in terms that do not depend on the backend.

/// A boxed error from a database driver.
pub type DriverError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A storage failure. `store` names the database as people see it (for
/// SQLite, the file's path).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error (locked, full disk, a failed statement).
    #[error("database {store}: {source}")]
    Database {
        /// The database.
        store: String,
        /// The driver's error.
        #[source]
        source: DriverError,
    },
    /// A directory or file could not be created or read.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory or file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// There is no database at this location (read-only opens never create one).
    #[error("no database at {store}")]
    Missing {
        /// The database.
        store: String,
    },
    /// The database was written by a newer ivrx.
    #[error("database {store} has schema version {found}, newer than this ivrx understands ({known}); upgrade ivrx")]
    TooNew {
        /// The database.
        store: String,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The store was opened for reading only.
    #[error("the store {store} was opened read-only")]
    ReadOnly {
        /// The database.
        store: String,
    },
    /// The writer has stopped.
    #[error("the store writer has stopped")]
    Closed,
}

impl StoreError {
    /// A driver error about `store`.
    pub fn database(store: impl Into<String>, source: impl Into<DriverError>) -> Self {
        StoreError::Database { store: store.into(), source: source.into() }
    }
}
