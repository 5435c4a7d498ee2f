//! Several instances on one PostgreSQL database (see [`crate::cluster`]):
//! a lease row per conversation, checkpoints fenced by the lease's epoch
//! under a row lock (one statement each, see [`write::CHECKPOINT`]),
//! wake-ups and committed events through `LISTEN`/`NOTIFY`.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use futures_util::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::connect::{tls, Db};
use super::{pipeline, write};
use crate::cluster::{Acquired, Answer, Cluster, Fence, Lease, Request};
use crate::journal::WriteOp;
use crate::model::Transition;
use crate::{redact, StoreError};

/// The notification channel wake-ups go through.
pub(super) const CHANNEL: &str = "ivrx_work";
/// The channel checkpoints announce their events on: `<conversation> <last n>`.
const COMMITTED: &str = "ivrx_events";
/// Sends a notification (`channel`, `payload`) when the transaction commits.
const NOTIFY: &str = "SELECT pg_notify($1, $2)";
/// How long the listener waits before connecting again after losing its connection.
const RECONNECT: Duration = Duration::from_millis(500);

fn secs(term: Duration) -> f64 {
    term.as_secs_f64()
}

/// The cluster side of a PostgreSQL store.
pub(super) struct PgCluster {
    pub(super) db: Db,
    pub(super) redact_pii: bool,
}

#[async_trait]
impl Cluster for PgCluster {
    async fn acquire(&self, conversation_id: &str, owner: &str, term: Duration) -> Result<Acquired, StoreError> {
        let db = &self.db;
        let client = db.get().await?;
        let taken = client
            .query_opt(
                "INSERT INTO leases (conversation_id, owner, epoch, expires_at)
                 VALUES ($1, $2, 1, now() + make_interval(secs => $3))
                 ON CONFLICT (conversation_id) DO UPDATE SET owner = excluded.owner, epoch = leases.epoch + 1,
                   expires_at = excluded.expires_at
                 WHERE leases.expires_at <= now() OR leases.owner = excluded.owner
                 RETURNING epoch",
                &[&conversation_id, &owner, &secs(term)],
            )
            .await
            .map_err(db.err())?;
        if let Some(row) = taken {
            let lease =
                Lease { conversation_id: conversation_id.to_string(), owner: owner.to_string(), epoch: row.get(0) };
            return Ok(Acquired::Owned(lease));
        }
        let holder = client
            .query_opt("SELECT owner FROM leases WHERE conversation_id = $1", &[&conversation_id])
            .await
            .map_err(db.err())?;
        Ok(Acquired::Held { owner: holder.map(|r| r.get(0)).unwrap_or_default() })
    }

    async fn renew(&self, lease: &Lease, term: Duration) -> Result<bool, StoreError> {
        let client = self.db.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE leases SET expires_at = now() + make_interval(secs => $4)
                 WHERE conversation_id = $1 AND owner = $2 AND epoch = $3",
            )
            .await
            .map_err(self.db.err())?;
        let n = client
            .execute(&stmt, &[&lease.conversation_id, &lease.owner, &lease.epoch, &secs(term)])
            .await
            .map_err(self.db.err())?;
        Ok(n == 1)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let client = self.db.get().await?;
        client
            .execute(
                "UPDATE leases SET expires_at = now() WHERE conversation_id = $1 AND owner = $2 AND epoch = $3",
                &[&lease.conversation_id, &lease.owner, &lease.epoch],
            )
            .await
            .map_err(self.db.err())?;
        Ok(())
    }

    async fn release_all(&self, owner: &str) -> Result<u64, StoreError> {
        let client = self.db.get().await?;
        client
            .execute("UPDATE leases SET expires_at = now() WHERE owner = $1 AND expires_at > now()", &[&owner])
            .await
            .map_err(self.db.err())
    }

    async fn checkpoint(
        &self,
        lease: &Lease,
        transition: Option<Transition>,
        answers: &[Answer],
        term: Duration,
    ) -> Result<Fence, StoreError> {
        let transition = match transition {
            Some(t) if self.redact_pii => match redact::write_op(WriteOp::Transition(t)) {
                WriteOp::Transition(t) => Some(t),
                _ => unreachable!("redaction keeps the kind of write"),
            },
            t => t,
        };
        let db = &self.db;
        let began = std::time::Instant::now();
        let decision = transition.as_ref().is_some_and(|t| t.events.iter().any(|r| r.event.kind() == "decision"));
        let last = transition.as_ref().and_then(|t| t.events.last()).map(|r| r.n);
        // Followers read the new events; askers, their answers.
        let notify = (last.is_some() || !answers.is_empty())
            .then(|| (COMMITTED, format!("{} {}", lease.conversation_id, last.unwrap_or(0))));
        let fence = write::Fence { lease, term: secs(term), lock_timeout: &db.lock_timeout_ms };
        let params = write::checkpoint(Some(fence), transition.as_ref(), answers, notify);
        let client = db.get().await?;
        let pool_ms = began.elapsed().as_secs_f64() * 1e3;
        let statement = client.prepare_cached(write::CHECKPOINT).await.map_err(db.err())?;
        // One statement, so one transaction: nothing of it commits unless
        // the lease, locked before anything else runs, is still ours.
        let outcome = match client.execute(&statement, &pipeline::refs(&params)).await {
            Ok(_) => Fence::Committed,
            Err(e) if e.code().is_some_and(|c| c.code() == write::FENCE_LOST) => Fence::Lost,
            Err(e) => return Err(db.classify(e)),
        };
        if decision {
            tracing::debug!(target: "ivrx::latency", stage = "checkpoint", pool_ms, total_ms = began.elapsed().as_secs_f64() * 1e3);
        }
        Ok(outcome)
    }

    async fn request(&self, conversation_id: &str, body: &str) -> Result<i64, StoreError> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(self.db.err())?;
        let row = tx
            .query_one(
                "INSERT INTO requests (conversation_id, body) VALUES ($1, $2) RETURNING id",
                &[&conversation_id, &body],
            )
            .await
            .map_err(self.db.err())?;
        notify(&tx, conversation_id).await.map_err(self.db.err())?;
        tx.commit().await.map_err(self.db.err())?;
        Ok(row.get(0))
    }

    async fn requests(&self, conversation_id: &str) -> Result<Vec<Request>, StoreError> {
        let client = self.db.get().await?;
        let pending = "SELECT id, body FROM requests WHERE conversation_id = $1 AND answer IS NULL ORDER BY id";
        let stmt = client.prepare_cached(pending).await.map_err(self.db.err())?;
        let rows = client.query(&stmt, &[&conversation_id]).await.map_err(self.db.err())?;
        Ok(rows.iter().map(|r| Request { id: r.get(0), body: r.get(1) }).collect())
    }

    async fn take_answer(&self, request_id: i64) -> Result<Option<String>, StoreError> {
        let client = self.db.get().await?;
        let row = client
            .query_opt("DELETE FROM requests WHERE id = $1 AND answer IS NOT NULL RETURNING answer", &[&request_id])
            .await
            .map_err(self.db.err())?;
        Ok(row.and_then(|r| r.get(0)))
    }

    async fn forget_requests(&self, age: Duration) -> Result<u64, StoreError> {
        let client = self.db.get().await?;
        client
            .execute("DELETE FROM requests WHERE created_at < now() - make_interval(secs => $1)", &[&secs(age)])
            .await
            .map_err(self.db.err())
    }

    async fn wake(&self, conversation_id: &str) -> Result<(), StoreError> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(self.db.err())?;
        notify(&tx, conversation_id).await.map_err(self.db.err())?;
        tx.commit().await.map_err(self.db.err())
    }

    fn wake_ups(&self) -> BoxStream<'static, Option<String>> {
        listen(self.db.clone(), CHANNEL, |payload| Some(payload.to_string()))
    }

    fn committed(&self) -> BoxStream<'static, Option<(String, u64)>> {
        listen(self.db.clone(), COMMITTED, |payload| {
            let (conv, n) = payload.rsplit_once(' ')?;
            Some((conv.to_string(), n.parse().ok()?))
        })
    }

    async fn orphans(&self) -> Result<Vec<String>, StoreError> {
        let client = self.db.get().await?;
        let rows = client
            .query(
                "SELECT w.conversation_id FROM (
                   SELECT conversation_id FROM sessions WHERE NOT ended
                   UNION
                   SELECT conversation_id FROM webhooks
                   WHERE NOT processed AND outcome = 'accepted' AND conversation_id IS NOT NULL
                   UNION
                   SELECT conversation_id FROM requests WHERE answer IS NULL
                 ) w
                 WHERE NOT EXISTS (SELECT 1 FROM leases l
                                   WHERE l.conversation_id = w.conversation_id AND l.expires_at > now())",
                &[],
            )
            .await
            .map_err(self.db.err())?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// Wakes every instance for `conversation_id` once `tx` commits (an
/// accepted webhook stored for it wakes its owner this way).
pub(super) async fn notify(tx: &Transaction<'_>, conversation_id: &str) -> Result<(), tokio_postgres::Error> {
    write::run(tx, NOTIFY, &[&CHANNEL, &conversation_id]).await.map(drop)
}

/// The notifications on `channel`, read by `parse`, from a connection of
/// its own that connects again when lost (saying so with `None`), until
/// nobody reads.
fn listen<T: Send + 'static>(
    db: Db,
    channel: &'static str,
    parse: fn(&str) -> Option<T>,
) -> BoxStream<'static, Option<T>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut connected_before = false;
        while !tx.is_closed() {
            match db.config.connect(tls()).await {
                Ok((client, conn)) => {
                    listen_on(&client, conn, channel, parse, &tx, connected_before).await;
                    connected_before = true;
                    tracing::warn!(db = %db.name, channel, "a notification listener lost its connection; connecting again");
                }
                Err(e) => {
                    tracing::debug!(db = %db.name, error = %db.classify(e), "a notification listener cannot connect")
                }
            }
            tokio::time::sleep(RECONNECT).await;
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|w| (w, rx)) }).boxed()
}

/// Listens on one connection until it is lost.
async fn listen_on<S, U, T>(
    client: &tokio_postgres::Client,
    mut conn: tokio_postgres::Connection<S, U>,
    channel: &str,
    parse: fn(&str) -> Option<T>,
    tx: &mpsc::UnboundedSender<Option<T>>,
    reconnected: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
    // The connection must be polled for LISTEN to be answered.
    let listen = format!("LISTEN {channel}");
    let mut listening = std::pin::pin!(client.batch_execute(&listen));
    loop {
        tokio::select! {
            r = &mut listening => if r.is_ok() { break } else { return },
            m = messages.next() => if !matches!(m, Some(Ok(_))) { return },
        }
    }
    if reconnected && tx.send(None).is_err() {
        return;
    }
    while let Some(Ok(m)) = messages.next().await {
        if let AsyncMessage::Notification(n) = m {
            if let Some(t) = parse(n.payload()) {
                if tx.send(Some(t)).is_err() {
                    return;
                }
            }
        }
    }
}
