//! Statements sent together on one connection, in one round trip.
//!
//! tokio-postgres writes a request as soon as its future is first polled
//! and matches the server's answers to requests in order, so statements
//! polled one after another without waiting reach the server in that order
//! and are executed one after another as if each had waited for the one
//! before (the server runs them in the order received). A transaction
//! written this way (`BEGIN`, its statements, `COMMIT`) costs one round
//! trip instead of one per statement.
//!
//! Two things keep this exactly as safe as waiting for each statement:
//! every parameter is encoded before anything is sent, so no statement of
//! a transaction fails on this side after an earlier one was sent (which
//! would let the later ones, and the `COMMIT`, run without it); and a
//! statement that fails on the server aborts the transaction, which makes
//! the server answer the `COMMIT` behind it by rolling back, while the
//! failure is reported here. A transaction dropped before its end was seen
//! closes its connection instead of returning it to the pool in an unknown
//! state.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::BytesMut;
use deadpool_postgres::{ClientWrapper, Object};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::connect::Db;
use crate::{DriverError, StoreError};

type Result<T> = std::result::Result<T, Error>;

/// Why a pipelined statement failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    /// The database or the connection failed.
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    /// A parameter cannot be encoded for its column (nothing was sent).
    #[error("a statement's parameter cannot be sent: {0}")]
    Encode(DriverError),
    /// A statement was given the wrong number of parameters (nothing was sent).
    #[error("{given} parameters for a statement that takes {expected}")]
    Params {
        /// What the statement takes.
        expected: usize,
        /// What it was given.
        given: usize,
    },
    /// The transaction's connection was already given up.
    #[error("the connection was closed")]
    Closed,
    /// A statement was sent before it was prepared.
    #[error("a statement was not prepared")]
    Unprepared,
}

impl Db {
    /// A pipeline's error about this database.
    pub(super) fn failed(&self) -> impl Fn(Error) -> StoreError + '_ {
        move |e| match e {
            Error::Db(e) => self.classify(e),
            other => StoreError::database(self.name.clone(), other),
        }
    }
}

/// A parameter owned by its statement.
pub(super) type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// The parameters of a statement, each owned by it: `params![a, b]`.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as $crate::postgres::pipeline::Param<'_>),*]
    };
}
pub(super) use params;

/// One statement of a pipeline.
pub(super) enum Step<'a> {
    /// A statement without parameters, sent as a simple query.
    Simple(&'a str),
    /// A prepared statement whose rows are not read.
    Execute(&'static str, Vec<Param<'a>>),
    /// A prepared statement: the rows it returned.
    Query(&'static str, Vec<Param<'a>>),
}

/// What the server answered to a step.
#[derive(Debug)]
pub(super) enum Reply {
    /// A simple statement or an `Execute` ran.
    Done,
    /// A prepared statement returned these rows.
    Rows(Vec<Row>),
}

impl Reply {
    /// The rows returned (none for anything else).
    pub(super) fn rows(&self) -> &[Row] {
        match self {
            Reply::Rows(rows) => rows,
            Reply::Done => &[],
        }
    }
}

/// A transaction on a pooled connection whose statements are pipelined.
pub(super) struct Tx {
    /// Taken only when dropped.
    conn: Option<Object>,
    /// `BEGIN` was sent and the transaction's end not seen yet.
    open: bool,
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            if let Some(conn) = self.conn.take() {
                // Out of the pool: the connection closes as it drops.
                drop(Object::take(conn));
            }
        }
    }
}

impl Tx {
    pub(super) fn new(conn: Object) -> Tx {
        Tx { conn: Some(conn), open: false }
    }

    fn client(&self) -> Result<&ClientWrapper> {
        match &self.conn {
            Some(conn) => Ok(conn),
            // Only dropping takes the connection.
            None => Err(Error::Closed),
        }
    }

    /// `begin` (`BEGIN` and what sets the transaction up, one message),
    /// `steps` and `COMMIT` in one round trip (no step depends on another's
    /// result).
    pub(super) async fn once(mut self, begin: &str, steps: Vec<Step<'_>>) -> Result<Vec<Reply>> {
        let mut all = Vec::with_capacity(steps.len() + 2);
        all.push(Step::Simple(begin));
        all.extend(steps);
        all.push(Step::Simple("COMMIT"));
        self.open = true;
        let mut replies = send(self.client()?, all).await?;
        let commit = replies.pop();
        if let Some(Ok(_)) = commit {
            self.open = false;
        }
        let mut replies = replies.into_iter().collect::<Result<Vec<_>>>()?;
        commit.transpose()?;
        replies.drain(..1.min(replies.len()));
        Ok(replies)
    }
}

/// Sends `steps` in order without waiting in between; their replies, in the
/// same order. The error is a preparation's or an encoding's, before
/// anything but the leading simple statements was sent.
async fn send<'a>(client: &'a ClientWrapper, steps: Vec<Step<'a>>) -> Result<Vec<Result<Reply>>> {
    let lead = steps.iter().take_while(|s| matches!(s, Step::Simple(_))).count();
    let mut steps = steps.into_iter();
    let none = HashMap::new();
    let head = steps.by_ref().take(lead).map(|s| step_future(client, s, &none)).collect::<Result<Vec<_>>>()?;
    let rest: Vec<Step<'a>> = steps.collect();
    let mut sqls: Vec<&'static str> = rest
        .iter()
        .filter_map(|s| match s {
            Step::Execute(sql, _) | Step::Query(sql, _) => Some(*sql),
            Step::Simple(_) => None,
        })
        .collect();
    sqls.sort_unstable();
    sqls.dedup();
    // Each statement is prepared once per connection: the first time, a
    // round trip before the statements behind it are sent (so that none
    // waits in the middle), and behind the leading simple statements, so
    // that what `BEGIN` and `SET LOCAL lock_timeout` start also bounds the
    // preparation's wait for a table locked elsewhere. Once prepared, the
    // statements follow the leading ones at once.
    let (head, rest) = futures_util::future::join(in_order(head), async move {
        let preparing = sqls
            .iter()
            .map(|sql| Box::pin(client.prepare_cached(sql)) as Pin<Box<dyn Future<Output = _> + Send + 'a>>)
            .collect();
        let mut statements: HashMap<&'static str, Statement> = HashMap::with_capacity(sqls.len());
        for (sql, statement) in sqls.iter().zip(in_order(preparing).await) {
            statements.insert(sql, statement?);
        }
        let futures = rest.into_iter().map(|s| step_future(client, s, &statements)).collect::<Result<Vec<_>>>()?;
        Ok::<_, Error>(in_order(futures).await)
    })
    .await;
    let mut replies = head;
    replies.extend(rest?);
    Ok(replies)
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply>> + Send + 'a>>;

/// A step's future, which sends it when first polled. Its parameters are
/// encoded here, so that it cannot fail on this side once sent.
fn step_future<'a>(
    client: &'a ClientWrapper,
    step: Step<'a>,
    statements: &HashMap<&'static str, Statement>,
) -> Result<StepFuture<'a>> {
    Ok(match step {
        Step::Simple(sql) => Box::pin(async move { Ok(client.batch_execute(sql).await.map(|()| Reply::Done)?) }),
        Step::Execute(sql, params) => {
            let statement = encodable(statements, sql, &params)?;
            Box::pin(async move { Ok(client.execute(&statement, &refs(&params)).await.map(|_| Reply::Done)?) })
        }
        Step::Query(sql, params) => {
            let statement = encodable(statements, sql, &params)?;
            Box::pin(async move { Ok(client.query(&statement, &refs(&params)).await.map(Reply::Rows)?) })
        }
    })
}

pub(super) fn refs<'p>(params: &'p [Param<'_>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

/// The prepared statement for `sql`, once its parameters are known to
/// encode (as the driver will encode them when sending).
fn encodable(statements: &HashMap<&'static str, Statement>, sql: &str, params: &[Param<'_>]) -> Result<Statement> {
    let statement = statements.get(sql).ok_or(Error::Unprepared)?;
    let types = statement.params();
    if types.len() != params.len() {
        return Err(Error::Params { expected: types.len(), given: params.len() });
    }
    let mut buf = BytesMut::new();
    for (param, ty) in params.iter().zip(types) {
        buf.clear();
        param.to_sql_checked(ty, &mut buf).map_err(Error::Encode)?;
    }
    Ok(statement.clone())
}

/// Polls `futures` one after another, each first poll in order, until all are done.
async fn in_order<'a, T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>) -> Vec<T> {
    let mut done: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, out) in futures.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::location::Location;

    async fn db() -> Option<Db> {
        let pg = ivrx_testkit::postgres::cluster()?;
        let Ok(Location::Postgres(url)) = Location::parse(pg.fresh_database()) else { panic!("not PostgreSQL") };
        let db = Db::new(&url, Duration::from_millis(500)).unwrap();
        let conn = db.get().await.unwrap();
        conn.batch_execute("CREATE TABLE t (n BIGINT PRIMARY KEY, seen BIGINT)").await.unwrap();
        Some(db)
    }

    async fn rows(db: &Db) -> Vec<(i64, Option<i64>)> {
        let conn = db.get().await.unwrap();
        let rows = conn.query("SELECT n, seen FROM t ORDER BY n", &[]).await.unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    }

    const INSERT: &str = "INSERT INTO t (n) VALUES ($1)";
    /// Each row sees how many rows the statements before it stored.
    const SEEN: &str = "UPDATE t SET seen = (SELECT count(*) FROM t) WHERE n = $1";
    const SET: &str = "BEGIN; SET LOCAL lock_timeout = 500";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn statements_run_in_the_order_given_and_commit_together() {
        let Some(db) = db().await else { return };
        let mut steps = Vec::new();
        for n in 1..=40_i64 {
            steps.push(Step::Execute(INSERT, params![n]));
            steps.push(Step::Execute(SEEN, params![n]));
        }
        let replies = Tx::new(db.get().await.unwrap()).once(SET, steps).await.unwrap();
        assert_eq!(replies.len(), 80);
        assert!(replies.iter().all(|r| matches!(r, Reply::Done)), "{replies:?}");
        let expected: Vec<(i64, Option<i64>)> = (1..=40).map(|n| (n, Some(n))).collect();
        assert_eq!(rows(&db).await, expected);
        // A second transaction on the same connections.
        let steps = vec![Step::Execute(INSERT, params![41_i64]), Step::Execute(SEEN, params![41_i64])];
        let replies = Tx::new(db.get().await.unwrap()).once(SET, steps).await.unwrap();
        assert!(matches!(replies.as_slice(), [Reply::Done, Reply::Done]));
        assert_eq!(rows(&db).await.last(), Some(&(41, Some(41))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_failing_on_the_server_commits_nothing_and_the_connection_serves_again() {
        let Some(db) = db().await else { return };
        let steps = vec![
            Step::Execute(INSERT, params![1_i64]),
            Step::Execute(INSERT, params![1_i64]), // the primary key refuses it
            Step::Execute(INSERT, params![2_i64]),
        ];
        let e = Tx::new(db.get().await.unwrap()).once(SET, steps).await.unwrap_err();
        assert!(db.failed()(e).to_string().contains("duplicate key"));
        assert_eq!(rows(&db).await, vec![]);
        let steps = vec![Step::Execute(INSERT, params![3_i64]), Step::Execute(INSERT, params![3_i64])];
        let e = Tx::new(db.get().await.unwrap()).once(SET, steps).await.unwrap_err();
        assert!(db.failed()(e).to_string().contains("duplicate key"));
        assert_eq!(rows(&db).await, vec![]);
        Tx::new(db.get().await.unwrap()).once(SET, vec![Step::Execute(INSERT, params![4_i64])]).await.unwrap();
        assert_eq!(rows(&db).await, vec![(4, None)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parameter_that_cannot_be_sent_stops_the_transaction_before_its_statements() {
        let Some(db) = db().await else { return };
        let steps = vec![
            Step::Execute(INSERT, params![1_i64]),
            Step::Execute(INSERT, params!["not a number"]),
            Step::Execute(INSERT, params![2_i64]),
        ];
        let e = Tx::new(db.get().await.unwrap()).once(SET, steps).await.unwrap_err();
        assert!(matches!(e, Error::Encode(_)), "{e}");
        let steps = vec![Step::Execute(INSERT, params![1_i64, 2_i64])];
        let e = Tx::new(db.get().await.unwrap()).once(SET, steps).await.unwrap_err();
        assert!(matches!(e, Error::Params { expected: 1, given: 2 }), "{e}");
        assert_eq!(rows(&db).await, vec![]);
        Tx::new(db.get().await.unwrap()).once(SET, vec![Step::Execute(INSERT, params![5_i64])]).await.unwrap();
        assert_eq!(rows(&db).await, vec![(5, None)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_dropped_before_its_answer_leaves_the_pool_usable() {
        let Some(db) = db().await else { return };
        let slow = vec![Step::Execute(INSERT, params![1_i64]), Step::Simple("SELECT pg_sleep(0.3)")];
        let unanswered = Tx::new(db.get().await.unwrap()).once(SET, slow);
        assert!(tokio::time::timeout(Duration::from_millis(50), unanswered).await.is_err());
        for n in 2..=20_i64 {
            Tx::new(db.get().await.unwrap()).once(SET, vec![Step::Execute(INSERT, params![n])]).await.unwrap();
        }
        let stored = rows(&db).await;
        assert!((2..=20).all(|n| stored.iter().any(|(m, _)| *m == n)), "{stored:?}");
    }
}
