//! What only the PostgreSQL backend does: migrations under a lock shared by
//! instances starting together, and a clear error for each configuration
//! mistake (a newer schema, another application's database, a wrong
//! password, an unreachable server, a missing database). Runs against the
//! test process's throw-away cluster (see `ivrx_testkit::postgres`).

mod common;

use ivrx_store::{Location, PostgresStore, StoreError, StoreOptions};
use ivrx_testkit::postgres::{cluster, Cluster};

/// A plain connection to run SQL beside the store, as another tool would.
async fn psql(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

fn location(url: &str) -> ivrx_store::PostgresUrl {
    match Location::parse(url).unwrap() {
        Location::Postgres(u) => u,
        other => panic!("not PostgreSQL: {other:?}"),
    }
}

async fn open(url: &str) -> Result<PostgresStore, StoreError> {
    PostgresStore::open(&location(url), StoreOptions::default()).await
}

fn pg() -> Option<&'static Cluster> {
    cluster()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let Some(pg) = pg() else { return };
    let url = pg.fresh_database();
    let opens: Vec<_> = (0..6).map(|_| tokio::spawn(open_owned(url.clone()))).collect();
    for o in opens {
        o.await.unwrap().unwrap();
    }
    let client = psql(&url).await;
    let rows =
        client.query("SELECT version, count(*) FROM ivrx_schema_migrations GROUP BY version", &[]).await.unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert_eq!(r.get::<_, i64>(1), 1, "version {} applied once", r.get::<_, i64>(0));
    }
    // And again, on a database that is already there.
    open(&url).await.unwrap();
}

async fn open_owned(url: String) -> Result<PostgresStore, StoreError> {
    open(&url).await
}

/// The checkpoint function is built from the statements SQLite runs: a
/// database holding another version of it (an earlier ivrx's) gets this
/// version's at start, once.
#[tokio::test]
async fn another_version_of_the_checkpoint_function_is_replaced_at_start() {
    let Some(pg) = pg() else { return };
    let url = pg.fresh_database();
    drop(open(&url).await.unwrap());
    let client = psql(&url).await;
    let body = || async {
        let row = client.query_one("SELECT prosrc FROM pg_proc WHERE proname = 'ivrx_checkpoint'", &[]).await.unwrap();
        row.get::<_, String>(0)
    };
    let ours = body().await;
    assert!(ours.contains("WHEN 'transfer' THEN"), "{ours}");
    let signature: String = client
        .query_one("SELECT pg_get_function_identity_arguments(oid) FROM pg_proc WHERE proname = 'ivrx_checkpoint'", &[])
        .await
        .unwrap()
        .get(0);
    client
        .batch_execute(&format!(
            "CREATE OR REPLACE FUNCTION ivrx_checkpoint({signature}) RETURNS VOID LANGUAGE plpgsql AS $$ BEGIN END $$"
        ))
        .await
        .unwrap();
    assert_ne!(body().await, ours);
    drop(open(&url).await.unwrap());
    assert_eq!(body().await, ours);
    let versions: i64 =
        client.query_one("SELECT count(*) FROM pg_proc WHERE proname = 'ivrx_checkpoint'", &[]).await.unwrap().get(0);
    assert_eq!(versions, 1, "replaced, not overloaded");
}

#[tokio::test]
async fn a_database_from_a_newer_ivrx_is_refused() {
    let Some(pg) = pg() else { return };
    let url = pg.fresh_database();
    drop(open(&url).await.unwrap());
    psql(&url)
        .await
        .execute("INSERT INTO ivrx_schema_migrations (version, name) VALUES (1000, 'from the future')", &[])
        .await
        .unwrap();
    let e = open(&url).await.unwrap_err();
    assert!(matches!(e, StoreError::TooNew { found: 1000, .. }), "{e}");
    assert!(e.to_string().contains("upgrade ivrx"), "{e}");
    let e = PostgresStore::open_read_only(&location(&url)).await.unwrap_err();
    assert!(matches!(e, StoreError::TooNew { .. }), "{e}");
}

#[tokio::test]
async fn another_applications_database_is_refused_and_left_alone() {
    let Some(pg) = pg() else { return };
    let url = pg.fresh_database();
    psql(&url).await.batch_execute("CREATE TABLE customers (id int); CREATE TABLE orders (id int)").await.unwrap();
    let e = open(&url).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Foreign { .. }), "{msg}");
    assert!(msg.contains("customers") && msg.contains("createdb ivrx"), "{msg}");
    assert!(!msg.contains("ivrx-test"), "the password is masked: {msg}");
    let tables: i64 = psql(&url)
        .await
        .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 2, "nothing was created");
}

#[tokio::test]
async fn a_wrong_password_is_refused_by_name() {
    let Some(pg) = pg() else { return };
    let e = open(&pg.url_with_password("not-the-password")).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Refused { ref user, .. } if user == "postgres"), "{msg}");
    assert!(msg.contains("password authentication failed") && msg.contains("fix the user and password"), "{msg}");
    assert!(!msg.contains("not-the-password"), "{msg}");
}

#[tokio::test]
async fn an_unreachable_server_is_reported_with_the_fix() {
    // A port nothing listens on: bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = open(&format!("postgres://ivrx:secret@127.0.0.1:{port}/ivrx")).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Unreachable { .. }), "{msg}");
    assert!(msg.contains("check that PostgreSQL is running") && !msg.contains("secret"), "{msg}");
}

#[tokio::test]
async fn a_missing_database_is_named() {
    let Some(pg) = pg() else { return };
    let url = format!("{}/no_such_db", pg.url().rsplit_once('/').unwrap().0);
    let e = open(&url).await.unwrap_err();
    assert!(matches!(e, StoreError::NoSuchDatabase { ref name, .. } if name == "no_such_db"), "{e}");
    assert!(e.to_string().contains("createdb no_such_db"), "{e}");
}

#[tokio::test]
async fn reading_an_empty_database_says_there_is_no_store() {
    let Some(pg) = pg() else { return };
    let e = PostgresStore::open_read_only(&location(&pg.fresh_database())).await.unwrap_err();
    assert!(matches!(e, StoreError::Missing { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_elsewhere_is_reported_and_nothing_is_lost() {
    use ivrx_store::{Conversations, Journal};
    let Some(pg) = pg() else { return };
    let url = pg.fresh_database();
    let options = StoreOptions { lock_timeout: std::time::Duration::from_millis(100), ..StoreOptions::default() };
    let store = PostgresStore::open(&location(&url), options).await.unwrap();
    // Another session holds the event log locked.
    let mut blocker = psql(&url).await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE").await.unwrap();
    common::write_events(&store, &common::call());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !store.health().is_failing() {
        assert!(std::time::Instant::now() < deadline, "the failure was never reported");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(store.health().last_error().unwrap().contains("lock timeout"), "{:?}", store.health().last_error());
    tx.rollback().await.unwrap();
    store.flush().await.unwrap();
    assert!(!store.health().is_failing());
    assert_eq!(store.events("c1", 0).await.unwrap().len(), 12);
}
