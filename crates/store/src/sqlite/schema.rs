//! Versioned schema migrations. Each migration runs once, in order, inside a
//! transaction; `schema_migrations` records what has been applied.

use rusqlite::{Connection, OptionalExtension};

/// One schema step.
pub struct Migration {
    /// Strictly increasing version.
    pub version: i64,
    /// What it does.
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "conversations, legs, utterances, decisions, transfers, events, webhooks",
        sql: r#"
CREATE TABLE conversations (
    id                    TEXT PRIMARY KEY,
    started_at            TEXT NOT NULL,
    ended_at              TEXT,
    direction             TEXT,
    caller                TEXT,
    callee                TEXT,
    caller_call_control_id TEXT,
    status                TEXT NOT NULL DEFAULT 'active',
    end_reason            TEXT,
    duration_ms           INTEGER,
    decision_reason       TEXT,
    decision_source       TEXT,
    queue                 TEXT,
    trigger_index         INTEGER,
    trigger_text          TEXT,
    trigger_phrase        TEXT,
    decision_ms           INTEGER,
    transfer_status       TEXT,
    transferred           INTEGER NOT NULL DEFAULT 0,
    connected_ms          INTEGER
);
CREATE INDEX conversations_started ON conversations(started_at);
CREATE INDEX conversations_status ON conversations(status);

CREATE TABLE legs (
    call_control_id  TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL,
    role             TEXT NOT NULL,
    call_leg_id      TEXT,
    call_session_id  TEXT,
    from_number      TEXT,
    to_number        TEXT,
    joined_ms        INTEGER,
    answered_ms      INTEGER,
    ended_ms         INTEGER,
    hangup_cause     TEXT,
    hangup_source    TEXT
);
CREATE INDEX legs_conversation ON legs(conversation_id);

CREATE TABLE utterances (
    conversation_id  TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    speaker          TEXT NOT NULL,
    caller_index     INTEGER,
    offset_ms        INTEGER NOT NULL,
    text             TEXT NOT NULL,
    confidence       REAL,
    score            REAL,
    label            TEXT,
    trackers         TEXT,
    engine           TEXT,
    policy           TEXT,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE decisions (
    conversation_id  TEXT NOT NULL,
    n                INTEGER NOT NULL,
    offset_ms        INTEGER NOT NULL,
    source           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    queue            TEXT NOT NULL,
    trigger_index    INTEGER,
    trigger_text     TEXT,
    trigger_phrase   TEXT,
    tracker          TEXT,
    numbers          TEXT,
    PRIMARY KEY (conversation_id, n)
);

CREATE TABLE transfers (
    conversation_id        TEXT NOT NULL,
    decision_n             INTEGER NOT NULL,
    attempt                INTEGER NOT NULL,
    queue                  TEXT NOT NULL,
    target                 TEXT NOT NULL,
    mode                   TEXT NOT NULL,
    status                 TEXT NOT NULL,
    detail                 TEXT,
    agent_call_control_id  TEXT,
    requested_ms           INTEGER,
    answered_ms            INTEGER,
    connected_ms           INTEGER,
    ended_ms               INTEGER,
    PRIMARY KEY (conversation_id, decision_n, attempt)
);

CREATE TABLE events (
    conversation_id  TEXT NOT NULL,
    n                INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    at               TEXT NOT NULL,
    offset_ms        INTEGER NOT NULL,
    body             TEXT NOT NULL,
    PRIMARY KEY (conversation_id, n)
);

CREATE TABLE webhooks (
    event_id         TEXT PRIMARY KEY,
    received_at      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    call_control_id  TEXT,
    conversation_id  TEXT,
    attempt          INTEGER,
    outcome          TEXT NOT NULL,
    processed        INTEGER NOT NULL DEFAULT 0,
    body             TEXT NOT NULL
);
CREATE INDEX webhooks_conversation ON webhooks(conversation_id, processed);
CREATE INDEX webhooks_received ON webhooks(received_at);
"#,
    },
    Migration {
        version: 2,
        name: "session snapshots for resuming calls after a restart",
        sql: r#"
CREATE TABLE sessions (
    conversation_id  TEXT PRIMARY KEY,
    state            TEXT NOT NULL,
    ended            INTEGER NOT NULL DEFAULT 0,
    updated_at       TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 3,
        name: "insights from external engines (Symbl topics and trackers)",
        sql: r#"
CREATE TABLE insights (
    conversation_id  TEXT NOT NULL,
    source           TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (conversation_id, source)
);
"#,
    },
    Migration {
        version: 4,
        name: "the legs whose end is not recorded, for reconciliation",
        sql: r#"
CREATE INDEX legs_open ON legs(conversation_id) WHERE ended_ms IS NULL;
"#,
    },
];

/// Applies every migration not applied yet. Returns the versions applied.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Vec<i64>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )?;
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let tx = conn.transaction()?;
        let done: Option<i64> = tx
            .query_row("SELECT version FROM schema_migrations WHERE version = ?1", [m.version], |r| r.get(0))
            .optional()?;
        if done.is_none() {
            tx.execute_batch(m.sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![m.version, m.name, chrono::Utc::now().to_rfc3339()],
            )?;
            applied.push(m.version);
        }
        tx.commit()?;
    }
    Ok(applied)
}

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), vec![1, 2, 3, 4]);
        assert!(migrate(&mut conn).unwrap().is_empty());
        let v: i64 = conn.query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0)).unwrap();
        assert_eq!(v, latest_version());
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(versions, sorted);
    }
}
