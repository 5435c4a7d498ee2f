//! The backends the contract suite runs against: each test gets a fresh,
//! empty store of the kind asked for (for PostgreSQL, a new database in the
//! test process's throw-away cluster).

#![allow(dead_code)]

use std::any::Any;

use ivrx_store::{Location, SharedStore, StoreOptions};

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    /// Whether the backend can run here (PostgreSQL may be missing outside CI,
    /// where the test then skips; under CI this fails instead).
    pub fn available(self) -> bool {
        match self {
            Kind::Sqlite => true,
            Kind::Postgres => ivrx_testkit::postgres::cluster().is_some(),
        }
    }
}

/// A fresh store and what keeps it alive.
pub struct Fixture {
    pub store: SharedStore,
    location: Location,
    keep: Box<dyn Any + Send>,
}

/// A fresh, empty location of this kind, and what keeps it alive.
pub fn fresh_location(kind: Kind) -> (Location, Box<dyn Any + Send>) {
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (Location::sqlite(dir.path().join("sub/ivrx.db")), Box::new(dir))
        }
        Kind::Postgres => {
            let cluster = ivrx_testkit::postgres::cluster().expect("PostgreSQL");
            (Location::parse(cluster.fresh_database()).unwrap(), Box::new(()))
        }
    }
}

impl Fixture {
    pub async fn new(kind: Kind, options: StoreOptions) -> Fixture {
        let (location, keep) = fresh_location(kind);
        let store = ivrx_store::open(&location, options).await.unwrap();
        Fixture { store, location, keep }
    }

    /// The same database opened again for reading only.
    pub async fn read_only(&self) -> SharedStore {
        ivrx_store::open_read_only(&self.location).await.unwrap()
    }

    /// Every text value of every row of every table, one per line.
    pub async fn everything_stored(&self) -> String {
        let _ = &self.keep;
        match &self.location {
            Location::Sqlite(path) => ivrx_store::sqlite::Reader::new(path.clone()).every_text().unwrap(),
            Location::Postgres(url) => {
                ivrx_store::PostgresStore::open_read_only(url).await.unwrap().every_text().await.unwrap()
            }
        }
    }
}
