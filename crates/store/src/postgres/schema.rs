//! Versioned schema migrations for PostgreSQL: the same tables and columns
//! as SQLite's (see [`crate::sqlite`]), in PostgreSQL's types (times are
//! `timestamptz`, flags `boolean`). Ids sort byte-wise (`COLLATE "C"`), so a
//! prefix is a range scan of the primary key, as in SQLite.
//!
//! Migrations run at start in one transaction that first takes a
//! transaction-scoped advisory lock: instances starting together wait for
//! one another, and the first one migrates. The lock ends with the
//! transaction, so it holds through a pooler in transaction mode.

use deadpool_postgres::GenericClient;

use super::connect::Db;
use crate::StoreError;

/// The table recording applied migrations; its presence marks an ivrx database.
pub(super) const MIGRATIONS_TABLE: &str = "ivrx_schema_migrations";

/// The advisory lock key migrations run under (`ivrx` in ASCII).
const MIGRATION_LOCK: i64 = 0x6976_7278;

/// One schema step.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "conversations, legs, utterances, decisions, transfers, events, webhooks, sessions, insights",
        sql: r#"
CREATE TABLE conversations (
    id                     TEXT COLLATE "C" PRIMARY KEY,
    started_at             TIMESTAMPTZ NOT NULL,
    ended_at               TIMESTAMPTZ,
    direction              TEXT,
    caller                 TEXT,
    callee                 TEXT,
    caller_call_control_id TEXT,
    status                 TEXT NOT NULL DEFAULT 'active',
    end_reason             TEXT,
    duration_ms            BIGINT,
    decision_reason        TEXT,
    decision_source        TEXT,
    queue                  TEXT,
    trigger_index          BIGINT,
    trigger_text           TEXT,
    trigger_phrase         TEXT,
    decision_ms            BIGINT,
    transfer_status        TEXT,
    transferred            BOOLEAN NOT NULL DEFAULT false,
    connected_ms           BIGINT
);
CREATE INDEX conversations_started ON conversations(started_at, id);
CREATE INDEX conversations_status ON conversations(status);

CREATE TABLE legs (
    call_control_id  TEXT COLLATE "C" PRIMARY KEY,
    conversation_id  TEXT COLLATE "C" NOT NULL,
    role             TEXT NOT NULL,
    call_leg_id      TEXT,
    call_session_id  TEXT,
    from_number      TEXT,
    to_number        TEXT,
    joined_ms        BIGINT,
    answered_ms      BIGINT,
    ended_ms         BIGINT,
    hangup_cause     TEXT,
    hangup_source    TEXT
);
CREATE INDEX legs_conversation ON legs(conversation_id);
CREATE INDEX legs_open ON legs(conversation_id) WHERE ended_ms IS NULL;

CREATE TABLE utterances (
    conversation_id  TEXT COLLATE "C" NOT NULL,
    seq              BIGINT NOT NULL,
    speaker          TEXT NOT NULL,
    caller_index     BIGINT,
    offset_ms        BIGINT NOT NULL,
    text             TEXT NOT NULL,
    confidence       DOUBLE PRECISION,
    score            DOUBLE PRECISION,
    label            TEXT,
    trackers         TEXT,
    engine           TEXT,
    policy           TEXT,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE decisions (
    conversation_id  TEXT COLLATE "C" NOT NULL,
    n                BIGINT NOT NULL,
    offset_ms        BIGINT NOT NULL,
    source           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    queue            TEXT NOT NULL,
    trigger_index    BIGINT,
    trigger_text     TEXT,
    trigger_phrase   TEXT,
    tracker          TEXT,
    numbers          TEXT,
    PRIMARY KEY (conversation_id, n)
);

CREATE TABLE transfers (
    conversation_id        TEXT COLLATE "C" NOT NULL,
    decision_n             BIGINT NOT NULL,
    attempt                BIGINT NOT NULL,
    queue                  TEXT NOT NULL,
    target                 TEXT NOT NULL,
    mode                   TEXT NOT NULL,
    status                 TEXT NOT NULL,
    detail                 TEXT,
    agent_call_control_id  TEXT,
    requested_ms           BIGINT,
    answered_ms            BIGINT,
    connected_ms           BIGINT,
    ended_ms               BIGINT,
    PRIMARY KEY (conversation_id, decision_n, attempt)
);

CREATE TABLE events (
    conversation_id  TEXT COLLATE "C" NOT NULL,
    n                BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    at               TIMESTAMPTZ NOT NULL,
    offset_ms        BIGINT NOT NULL,
    body             TEXT NOT NULL,
    PRIMARY KEY (conversation_id, n)
);

CREATE TABLE webhooks (
    event_id         TEXT COLLATE "C" PRIMARY KEY,
    seq              BIGINT GENERATED ALWAYS AS IDENTITY,
    received_at      TIMESTAMPTZ NOT NULL,
    event_type       TEXT NOT NULL,
    call_control_id  TEXT,
    conversation_id  TEXT COLLATE "C",
    attempt          BIGINT,
    outcome          TEXT NOT NULL,
    processed        BOOLEAN NOT NULL DEFAULT false,
    body             TEXT NOT NULL
);
CREATE INDEX webhooks_conversation ON webhooks(conversation_id, processed, seq);
CREATE INDEX webhooks_received ON webhooks(received_at);

CREATE TABLE sessions (
    conversation_id  TEXT COLLATE "C" PRIMARY KEY,
    state            TEXT NOT NULL,
    ended            BOOLEAN NOT NULL DEFAULT false,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_active ON sessions(conversation_id) WHERE NOT ended;

CREATE TABLE insights (
    conversation_id  TEXT COLLATE "C" NOT NULL,
    source           TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (conversation_id, source)
);
"#,
    },
    Migration {
        version: 2,
        name: "conversation leases for several instances, pending webhooks by conversation",
        sql: r#"
CREATE TABLE leases (
    conversation_id  TEXT COLLATE "C" PRIMARY KEY,
    owner            TEXT NOT NULL,
    epoch            BIGINT NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX leases_expiry ON leases(expires_at);
CREATE INDEX webhooks_pending ON webhooks(conversation_id) WHERE NOT processed AND outcome = 'accepted';
"#,
    },
    Migration {
        version: 3,
        name: "operator requests any instance stores for a conversation's owner",
        sql: r#"
CREATE TABLE requests (
    id               BIGSERIAL PRIMARY KEY,
    conversation_id  TEXT COLLATE "C" NOT NULL,
    body             TEXT NOT NULL,
    answer           TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX requests_pending ON requests(conversation_id) WHERE answer IS NULL;
"#,
    },
    // The function is created at every start from the statements SQLite
    // runs (see super::checkpoint), so that they are written once.
    Migration { version: 4, name: "a checkpoint in one statement: ivrx_checkpoint", sql: "" },
];

/// The newest schema version this build knows.
pub(super) fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// What a database holds before ivrx touches it.
enum Found {
    /// No tables at all.
    Empty,
    /// An ivrx schema at this version.
    Ivrx(i64),
    /// Tables, none of them ivrx's migration record.
    Foreign(Vec<String>),
}

async fn inspect(client: &impl GenericClient, db: &Db) -> Result<Found, StoreError> {
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
            &[],
        )
        .await
        .map_err(db.err())?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if tables.is_empty() {
        return Ok(Found::Empty);
    }
    if !tables.iter().any(|t| t == MIGRATIONS_TABLE) {
        return Ok(Found::Foreign(tables));
    }
    let version: Option<i64> =
        client.query_one(&format!("SELECT max(version) FROM {MIGRATIONS_TABLE}"), &[]).await.map_err(db.err())?.get(0);
    Ok(Found::Ivrx(version.unwrap_or(0)))
}

fn foreign(db: &Db, tables: Vec<String>) -> StoreError {
    let shown: Vec<_> = tables.into_iter().take(3).collect();
    StoreError::Foreign { store: db.name.clone(), tables: shown.join(", ") }
}

fn too_new(db: &Db, found: i64) -> StoreError {
    StoreError::TooNew { store: db.name.clone(), found, known: latest_version() }
}

/// Creates or upgrades the schema, once across every instance starting at
/// the same time. Returns the versions applied.
pub(super) async fn migrate(db: &Db) -> Result<Vec<i64>, StoreError> {
    let mut client = db.get().await?;
    let tx = client.transaction().await.map_err(db.err())?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(db.err())?;
    let found = match inspect(&tx, db).await? {
        Found::Foreign(tables) => return Err(foreign(db, tables)),
        Found::Ivrx(v) if v > latest_version() => return Err(too_new(db, v)),
        Found::Ivrx(v) => v,
        Found::Empty => {
            tx.batch_execute(&format!(
                "CREATE TABLE {MIGRATIONS_TABLE} (
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            ))
            .await
            .map_err(db.err())?;
            0
        }
    };
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        if !m.sql.is_empty() {
            tx.batch_execute(m.sql).await.map_err(db.err())?;
        }
        tx.execute(&format!("INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)"), &[&m.version, &m.name])
            .await
            .map_err(db.err())?;
        applied.push(m.version);
    }
    let replaced = super::checkpoint::install(&tx, db).await?;
    tx.commit().await.map_err(db.err())?;
    if replaced && found >= 4 {
        tracing::info!(db = %db.name, "the checkpoint function was replaced by this version's");
    }
    if !applied.is_empty() {
        tracing::info!(db = %db.name, versions = ?applied, "database schema migrated");
    }
    Ok(applied)
}

/// Checks that an existing database is an ivrx one this build can read.
pub(super) async fn check(db: &Db) -> Result<(), StoreError> {
    let client = db.get().await?;
    match inspect(&client, db).await? {
        Found::Empty => Err(StoreError::Missing { store: db.name.clone() }),
        Found::Foreign(tables) => Err(foreign(db, tables)),
        Found::Ivrx(v) if v > latest_version() => Err(too_new(db, v)),
        Found::Ivrx(_) => Ok(()),
    }
}
