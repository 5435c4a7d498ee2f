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
    /// The database server could not be reached (refused, no route, timed out).
    #[error("cannot reach the database {store}: {reason}; check that PostgreSQL is running and that the host and port in the URL (--db, IVRX_DB or [storage] db) are right")]
    Unreachable {
        /// The database.
        store: String,
        /// What the connection attempt met.
        reason: String,
    },
    /// The TLS handshake with the database server failed (an untrusted or
    /// mismatched certificate, or a server without TLS under `sslmode=require`).
    #[error("the TLS handshake with the database {store} failed: {reason}; trust the server's CA (add it to the system's certificates, or point SSL_CERT_FILE at it), or use sslmode=disable only on a network you trust")]
    Tls {
        /// The database.
        store: String,
        /// What the handshake met.
        reason: String,
    },
    /// The database server refused the user or its password.
    #[error("the database {store} refused user {user:?}: {reason}; fix the user and password in the URL (--db, IVRX_DB or [storage] db)")]
    Refused {
        /// The database.
        store: String,
        /// The user.
        user: String,
        /// What the server said.
        reason: String,
    },
    /// The server has no database of that name.
    #[error("the server of {store} has no database {name:?}; create it (`createdb {name}` or `CREATE DATABASE {name}`) or fix the name in the URL")]
    NoSuchDatabase {
        /// The database.
        store: String,
        /// The missing database's name.
        name: String,
    },
    /// The database holds another application's tables.
    #[error("the database {store} belongs to another application (it holds tables such as {tables} but no ivrx schema); give ivrx a database of its own (`createdb ivrx`)")]
    Foreign {
        /// The database.
        store: String,
        /// Some of the tables found.
        tables: String,
    },
    /// The location given is not one ivrx can open.
    #[error("{given:?} is not a database location: {reason}")]
    BadLocation {
        /// What was given (a URL with its password masked).
        given: String,
        /// Why.
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
