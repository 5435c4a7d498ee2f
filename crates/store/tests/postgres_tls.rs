//! TLS to PostgreSQL through rustls: with `sslmode=require` the store
//! connects over TLS when it trusts the server's CA, and refuses a server
//! whose certificate it cannot check, with the fix. A binary of its own: it
//! points SSL_CERT_FILE (read by the system-roots loader) at a test CA.

use ivrx_store::{Location, PostgresStore, StoreError, StoreOptions};

fn location(url: &str) -> ivrx_store::PostgresUrl {
    match Location::parse(url).unwrap() {
        Location::Postgres(u) => u,
        other => panic!("not PostgreSQL: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_required_checked_and_used() {
    let Some(pg) = ivrx_testkit::postgres::Cluster::start_with_tls() else { return };
    let url = format!("{}?sslmode=require", pg.fresh_database());

    // The certificate's CA is not trusted yet.
    let e = PostgresStore::open(&location(&url), StoreOptions::default()).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Tls { .. }), "{msg}");
    assert!(msg.contains("UnknownIssuer") && msg.contains("SSL_CERT_FILE"), "{msg}");

    // Trusted: the store's connections are encrypted.
    std::env::set_var("SSL_CERT_FILE", pg.ca());
    let store = PostgresStore::open(&location(&url), StoreOptions::default()).await.unwrap();
    let (client, conn) = tokio_postgres::connect(pg.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let encrypted: i64 = client
        .query_one("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.application_name = 'ivrx'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "the store's connection uses TLS");
    drop(store);
}
