//! Commits a batch of writes to SQLite in one transaction: the domain event
//! log plus the tables that make conversations easy to query, with the
//! statements PostgreSQL runs too (see [`crate::projection::sql`]). Every
//! statement is idempotent, so a replayed event changes nothing.

use ivrx_core::session::Recorded;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, CachedStatement, Connection, ToSql, Transaction};

use crate::journal::WriteOp;
use crate::projection::{self, sql, Arg};

/// Commits a batch in one transaction. For each write: whether it was new
/// (only a webhook can be a repeat).
pub(super) fn commit(conn: &mut Connection, batch: &[WriteOp]) -> rusqlite::Result<Vec<bool>> {
    let tx = conn.transaction()?;
    let mut new = Vec::with_capacity(batch.len());
    for op in batch {
        new.push(match op {
            WriteOp::Transition(t) => {
                for r in &t.events {
                    apply_event(&tx, r)?;
                }
                if let Some(s) = &t.session {
                    statement(&tx, sql::SESSION)?.execute(params![
                        t.conversation_id,
                        s.state,
                        s.ended as i64,
                        chrono::Utc::now().to_rfc3339()
                    ])?;
                }
                for id in &t.processed {
                    statement(&tx, sql::WEBHOOK_PROCESSED)?.execute([id])?;
                }
                true
            }
            WriteOp::Webhook(w) => {
                let inserted = statement(&tx, sql::WEBHOOK)?.execute(params![
                    w.event_id,
                    w.received_at.to_rfc3339(),
                    w.event_type,
                    w.call_control_id,
                    w.conversation_id,
                    w.attempt,
                    w.outcome.as_str(),
                    w.body
                ])?;
                inserted > 0
            }
            WriteOp::Insights { conversation_id, source, insights } => {
                statement(&tx, sql::INSIGHTS)?.execute(params![
                    conversation_id,
                    source,
                    insights.to_string(),
                    chrono::Utc::now().to_rfc3339()
                ])?;
                true
            }
        });
    }
    tx.commit()?;
    Ok(new)
}

/// A cached statement of [`sql`], in SQLite's placeholders.
fn statement<'t>(tx: &'t Transaction<'_>, sql: &str) -> rusqlite::Result<CachedStatement<'t>> {
    tx.prepare_cached(&projection::sqlite_placeholders(sql))
}

fn apply_event(tx: &Transaction<'_>, r: &Recorded) -> rusqlite::Result<()> {
    if !projection::is_stored(r) {
        return Ok(());
    }
    if run(tx, sql::EVENT, &projection::event(r))? == 0 {
        return Ok(()); // already applied
    }
    for step in projection::steps(r) {
        run(tx, step.statement.sql, &step.args)?;
    }
    Ok(())
}

/// Runs a statement of [`sql`]; the rows it changed.
fn run(tx: &Transaction<'_>, sql: &str, args: &[Arg<'_>]) -> rusqlite::Result<usize> {
    statement(tx, sql)?.execute(rusqlite::params_from_iter(args))
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Null => ToSqlOutput::Owned(Value::Null),
            Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Int(v) => ToSqlOutput::Owned(Value::Integer(*v)),
            Arg::Float(v) => return v.to_sql(),
            Arg::Bool(v) => ToSqlOutput::Owned(Value::Integer(*v as i64)),
            Arg::Time(t) => ToSqlOutput::Owned(Value::Text(t.to_rfc3339())),
        })
    }
}
