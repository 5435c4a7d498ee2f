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
    Migration {
        version: 4,
        name: "a checkpoint in one statement: ivrx_checkpoint",
        sql: r#"
-- A transition's events, what the new ones mean for the other tables (the
-- statements of projection::sql, applied once per event), its session's
-- state, the webhooks it consumed and the requests it answered, in one
-- statement. With an owner, the conversation's lease row is locked first
-- and nothing is written unless the lease is still that owner's at that
-- epoch (SQLSTATE IX001 otherwise); the lease is then extended by p_term
-- seconds. e_steps holds, for each event, its projection steps as JSON
-- arrays: the step's name, then its values.
CREATE FUNCTION ivrx_checkpoint(
    p_conversation TEXT, p_owner TEXT, p_epoch BIGINT, p_term DOUBLE PRECISION, p_lock_timeout TEXT,
    e_conversations TEXT[], e_ns BIGINT[], e_kinds TEXT[], e_ats TIMESTAMPTZ[], e_offsets BIGINT[],
    e_bodies TEXT[], e_steps TEXT,
    s_conversation TEXT, s_state TEXT, s_ended BOOLEAN, s_updated TIMESTAMPTZ,
    p_processed TEXT[], a_ids BIGINT[], a_bodies TEXT[], p_channel TEXT, p_payload TEXT
) RETURNS VOID LANGUAGE plpgsql AS $checkpoint$
DECLARE
    held RECORD;
    steps JSONB;
    step JSONB;
    v_conv TEXT;
    v_n BIGINT;
    v_at TIMESTAMPTZ;
    v_off BIGINT;
BEGIN
    IF p_lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', p_lock_timeout, true);
    END IF;
    IF p_owner IS NOT NULL THEN
        SELECT owner, epoch INTO held FROM leases WHERE conversation_id = p_conversation FOR UPDATE;
        IF NOT FOUND OR held.owner <> p_owner OR held.epoch <> p_epoch THEN
            RAISE EXCEPTION 'the lease on conversation % is no longer held by % at epoch %',
                p_conversation, p_owner, p_epoch USING ERRCODE = 'IX001';
        END IF;
    END IF;
    IF cardinality(e_ns) > 0 THEN
        steps := e_steps::jsonb;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(e_ns), 0) LOOP
        v_conv := e_conversations[i];
        v_n := e_ns[i];
        v_at := e_ats[i];
        v_off := e_offsets[i];
        INSERT INTO events (conversation_id, n, kind, at, offset_ms, body)
        VALUES (v_conv, v_n, e_kinds[i], v_at, v_off, e_bodies[i])
        ON CONFLICT (conversation_id, n) DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        FOR j IN 0 .. jsonb_array_length(steps -> (i - 1)) - 1 LOOP
            step := steps -> (i - 1) -> j;
            CASE step ->> 0
            WHEN 'call_started' THEN
                INSERT INTO conversations (id, started_at, direction, caller, callee, caller_call_control_id)
                VALUES (v_conv, v_at, step ->> 1, step ->> 2, step ->> 3, step ->> 4)
                ON CONFLICT (id) DO NOTHING;
            WHEN 'leg_joined' THEN
                INSERT INTO legs (call_control_id, conversation_id, role, call_leg_id, call_session_id,
                    from_number, to_number, joined_ms)
                VALUES (step ->> 1, v_conv, step ->> 2, step ->> 3, step ->> 4, step ->> 5, step ->> 6, v_off)
                ON CONFLICT (call_control_id) DO NOTHING;
            WHEN 'leg_answered' THEN
                UPDATE legs SET answered_ms = v_off WHERE call_control_id = step ->> 1 AND answered_ms IS NULL;
            WHEN 'leg_ended' THEN
                UPDATE legs SET ended_ms = v_off, hangup_cause = step ->> 2, hangup_source = step ->> 3
                WHERE call_control_id = step ->> 1 AND ended_ms IS NULL;
            WHEN 'utterance' THEN
                INSERT INTO utterances (conversation_id, seq, speaker, caller_index, offset_ms, text, confidence)
                VALUES (v_conv, (step ->> 1)::bigint, step ->> 2, (step ->> 3)::bigint, v_off, step ->> 4,
                    (step ->> 5)::double precision)
                ON CONFLICT (conversation_id, seq) DO NOTHING;
            WHEN 'scored' THEN
                UPDATE utterances SET score = (step ->> 2)::double precision, label = step ->> 3,
                    trackers = step ->> 4, engine = step ->> 5, policy = step ->> 6
                WHERE conversation_id = v_conv AND seq = (step ->> 1)::bigint;
            WHEN 'decision' THEN
                INSERT INTO decisions (conversation_id, n, offset_ms, source, reason, queue, trigger_index,
                    trigger_text, trigger_phrase, tracker, numbers)
                VALUES (v_conv, v_n, v_off, step ->> 1, step ->> 2, step ->> 3, (step ->> 4)::bigint,
                    step ->> 5, step ->> 6, step ->> 7, step ->> 8)
                ON CONFLICT (conversation_id, n) DO NOTHING;
            WHEN 'conversation_decision' THEN
                UPDATE conversations SET decision_reason = step ->> 1, decision_source = step ->> 2,
                    queue = step ->> 3, trigger_index = (step ->> 4)::bigint, trigger_text = step ->> 5,
                    trigger_phrase = step ->> 6, decision_ms = v_off
                WHERE id = v_conv;
            WHEN 'transfer' THEN
                INSERT INTO transfers (conversation_id, decision_n, attempt, queue, target, mode, status, detail,
                    agent_call_control_id, requested_ms, answered_ms, connected_ms, ended_ms)
                VALUES (v_conv,
                    (SELECT CAST(COALESCE(max(d.n), 0) AS BIGINT) FROM decisions d WHERE d.conversation_id = v_conv),
                    (step ->> 1)::bigint, step ->> 2, step ->> 3, step ->> 4, step ->> 5, step ->> 6, step ->> 7,
                    v_off, (step ->> 8)::bigint, (step ->> 9)::bigint, (step ->> 10)::bigint)
                ON CONFLICT (conversation_id, decision_n, attempt) DO UPDATE SET
                    status = CASE WHEN transfers.status = 'failed' AND excluded.status = 'attempt_failed'
                                  THEN transfers.status ELSE excluded.status END,
                    detail = COALESCE(excluded.detail, transfers.detail),
                    agent_call_control_id = COALESCE(excluded.agent_call_control_id, transfers.agent_call_control_id),
                    answered_ms = COALESCE(transfers.answered_ms, excluded.answered_ms),
                    connected_ms = COALESCE(transfers.connected_ms, excluded.connected_ms),
                    ended_ms = COALESCE(transfers.ended_ms, excluded.ended_ms);
            WHEN 'conversation_transfer' THEN
                UPDATE conversations SET transfer_status = step ->> 1,
                    transferred = transferred OR (step ->> 2)::boolean,
                    connected_ms = COALESCE(connected_ms, (step ->> 3)::bigint)
                WHERE id = v_conv;
            WHEN 'call_ended' THEN
                UPDATE conversations SET status = 'ended', ended_at = v_at, end_reason = step ->> 1,
                    duration_ms = v_off
                WHERE id = v_conv AND status != 'ended';
            END CASE;
        END LOOP;
    END LOOP;
    IF s_state IS NOT NULL THEN
        INSERT INTO sessions (conversation_id, state, ended, updated_at)
        VALUES (s_conversation, s_state, s_ended, s_updated)
        ON CONFLICT (conversation_id) DO UPDATE SET state = excluded.state, ended = excluded.ended,
            updated_at = excluded.updated_at;
    END IF;
    IF cardinality(p_processed) > 0 THEN
        UPDATE webhooks SET processed = true WHERE event_id = ANY (p_processed);
    END IF;
    FOR i IN 1 .. coalesce(cardinality(a_ids), 0) LOOP
        UPDATE requests SET answer = a_bodies[i] WHERE id = a_ids[i] AND answer IS NULL;
    END LOOP;
    IF p_payload IS NOT NULL THEN
        PERFORM pg_notify(p_channel, p_payload);
    END IF;
    IF p_owner IS NOT NULL THEN
        UPDATE leases SET expires_at = now() + make_interval(secs => p_term) WHERE conversation_id = p_conversation;
    END IF;
END
$checkpoint$;
"#,
    },
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
        tx.batch_execute(m.sql).await.map_err(db.err())?;
        tx.execute(&format!("INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)"), &[&m.version, &m.name])
            .await
            .map_err(db.err())?;
        applied.push(m.version);
    }
    tx.commit().await.map_err(db.err())?;
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
