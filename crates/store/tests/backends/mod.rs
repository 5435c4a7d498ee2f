//! The backends the contract suite runs against: each test gets a fresh,
//! empty store of the kind asked for.

#![allow(dead_code)]

use std::any::Any;

use ivrx_store::{SharedStore, StoreOptions};

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
}

/// A fresh store and what keeps it alive.
pub struct Fixture {
    pub store: SharedStore,
    kind: Kind,
    keep: Box<dyn Any + Send>,
}

impl Fixture {
    pub async fn new(kind: Kind, options: StoreOptions) -> Fixture {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("sub/ivrx.db");
                let store = ivrx_store::open(&ivrx_store::Location::sqlite(&path), options).await.unwrap();
                Fixture { store, kind, keep: Box::new(dir) }
            }
        }
    }

    /// The same database opened again for reading only.
    pub async fn read_only(&self) -> SharedStore {
        let location = match self.kind {
            Kind::Sqlite => ivrx_store::Location::Sqlite(self.store.describe().into()),
        };
        ivrx_store::open_read_only(&location).await.unwrap()
    }

    /// Every text value of every row of every table, one per line.
    pub async fn everything_stored(&self) -> String {
        let _ = &self.keep;
        match self.kind {
            Kind::Sqlite => ivrx_store::sqlite::Reader::new(self.store.describe().into()).every_text().unwrap(),
        }
    }
}
