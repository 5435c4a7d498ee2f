//! Connecting to PostgreSQL: the URL's settings, TLS through rustls, the
//! connection pool, and what a failed connection means for the person who
//! configured it.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;

use crate::location::PostgresUrl;
use crate::StoreError;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a connection from a full pool.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per store: the writer, the idle check and the readers.
const POOL_SIZE: usize = 8;

/// The driver's settings from a URL (as `libpq` reads it: `sslmode`,
/// `connect_timeout`, `options`, `application_name`, …).
pub(crate) fn config(url: &str) -> Result<tokio_postgres::Config, String> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| e.to_string())?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("ivrx");
    }
    Ok(config)
}

/// TLS through rustls (ring): server certificates are checked against the
/// system's roots and the Mozilla roots. `sslmode=prefer` (the default)
/// uses TLS when the server offers it, `require` insists, `disable` never.
pub(crate) fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    let _ = roots.add_parsable_certificates(native.certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(client)
}

/// A database: its pool of connections and how people name it.
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) pool: Pool,
    /// The URL with its password masked.
    pub(crate) name: String,
    user: String,
    dbname: String,
    /// What starts a write transaction: `BEGIN` and its lock timeout.
    pub(crate) begin: String,
    /// The same timeout in milliseconds, for a statement that sets it itself.
    pub(crate) lock_timeout_ms: String,
    /// The driver's settings, for a connection of its own outside the pool (`LISTEN`).
    pub(crate) config: tokio_postgres::Config,
}

impl Db {
    /// A pool of connections to `url`; nothing is connected yet.
    pub(crate) fn new(url: &PostgresUrl, lock_timeout: Duration) -> Result<Self, StoreError> {
        let name = url.to_string();
        let config = config(url.expose()).map_err(|reason| StoreError::BadLocation { given: name.clone(), reason })?;
        let user = config.get_user().unwrap_or_default().to_string();
        let dbname = config.get_dbname().unwrap_or(&user).to_string();
        // A write waits this long for a row lock another instance holds
        // before it fails (and is retried), as SQLite's busy timeout does.
        // Set per transaction, not per session, so that it holds through a
        // pooler in transaction mode.
        let lock_timeout_ms = lock_timeout.as_millis().max(1).to_string();
        let begin = format!("BEGIN; SET LOCAL lock_timeout = {lock_timeout_ms}");
        let manager =
            Manager::from_config(config.clone(), tls(), ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(1)))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::database(name.clone(), e))?;
        Ok(Db { pool, name, user, dbname, begin, lock_timeout_ms, config })
    }

    /// A connection from the pool, or the error that names what to fix.
    pub(crate) async fn get(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => self.classify(e),
            PoolError::Timeout(kind) => StoreError::Unreachable {
                store: self.name.clone(),
                reason: format!("timed out ({kind:?}) waiting for a connection"),
            },
            other => StoreError::database(self.name.clone(), other),
        })
    }

    /// A driver error about this database.
    pub(crate) fn err(&self) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        move |e| self.classify(e)
    }

    /// What a driver error means: the server unreachable, the user refused,
    /// the database missing, or a failed statement.
    pub(crate) fn classify(&self, e: tokio_postgres::Error) -> StoreError {
        let store = self.name.clone();
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                return StoreError::Refused { store, user: self.user.clone(), reason: db.message().to_string() };
            }
            if *code == SqlState::INVALID_CATALOG_NAME {
                return StoreError::NoSuchDatabase { store, name: self.dbname.clone() };
            }
            // The driver's own text is only "db error": say what the server said.
            return StoreError::database(store, format!("{} (SQLSTATE {})", db.message(), code.code()));
        }
        let text = e.to_string();
        let reason = match std::error::Error::source(&e) {
            Some(s) => format!("{text}: {s}"),
            None => text.clone(),
        };
        if text.contains("TLS") || text.contains("SSL") {
            return StoreError::Tls { store, reason };
        }
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if text.starts_with("error connecting") || text.contains("timed out") || io {
            return StoreError::Unreachable { store, reason };
        }
        StoreError::database(store, e)
    }
}
