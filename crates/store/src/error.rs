//! What can go wrong with a store, in terms that do not depend on the backend.

/// A boxed error from a database driver.
pub type DriverError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A storage failure. `store` names the database as people see it (a file
/// path, or a PostgreSQL URL with its password masked).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error (locked, full disk, a failed statement, a lost connection).
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
    /// The database server cannot be reached.
    #[error("cannot reach the database at {store}: {reason}; check the host and port of --db / IVRX_DB / [storage] db and that the database server is running")]
    Unreachable {
        /// The database.
        store: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The database server refused the login (user, password or database name).
    #[error("the database at {store} refused the login: {reason}; fix the user, password or database name in --db / IVRX_DB / [storage] db")]
    Refused {
        /// The database.
        store: String,
        /// What the server said.
        reason: String,
    },
    /// The database already holds another application's tables.
    #[error("the database at {store} belongs to another application (it has tables {tables} and no ivrx schema); give ivrx a database of its own, e.g. `createdb ivrx`, and point --db / IVRX_DB / [storage] db at it")]
    Foreign {
        /// The database.
        store: String,
        /// Some of the tables found.
        tables: String,
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
    /// A location that names no supported database.
    #[error("{location:?} is not a database this ivrx can use: {reason}")]
    Location {
        /// What was given.
        location: String,
        /// Why not.
        reason: String,
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
