//! Serving an axum router over HTTP/1 with the limits a public endpoint needs.
//!
//! - Request headers must arrive within [`Limits::header_timeout`]: a client
//!   that trickles header bytes, or opens a connection (or keeps an idle one)
//!   and sends nothing, is disconnected instead of holding a task and a socket
//!   for ever.
//! - [`read_body_within`] buffers a request body with a deadline and a size
//!   limit, answering `408` or `413` (JSON) when either is exceeded.
//! - Every request carries a [`Connection`] handle in its extensions; a handler
//!   can [`abort`](Connection::abort) its connection so that the client gets no
//!   answer at all (the sandbox's chaos uses this to simulate a dropped
//!   connection).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// Deadlines for reading requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest time to receive a request's headers, counted from the moment
    /// the connection waits for a request (so an idle connection is closed
    /// after this long too).
    pub header_timeout: Duration,
    /// Longest time to receive a request's whole body (see [`read_body_within`]).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(10), body_timeout: Duration::from_secs(10) }
    }
}

/// A handle on the connection a request came in on.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    aborted: Arc<AtomicBool>,
}

impl Connection {
    /// Drops the connection: nothing more is written to it (not even the
    /// answer to the current request) and it is closed.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
}

/// A socket that fails every read and write once its connection is aborted,
/// so that hyper closes it without answering.
struct AbortableIo<T> {
    inner: T,
    conn: Connection,
}

fn aborted() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "connection dropped by the server")
}

impl<T: AsyncRead + Unpin> AsyncRead for AbortableIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.conn.is_aborted() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for AbortableIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.conn.is_aborted() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.conn.is_aborted() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.conn.is_aborted() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, lets open connections finish their requests, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, router.clone(), limits, stop_rx.clone(), open_rx.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) {
    let conn = Connection::default();
    let io = TokioIo::new(AbortableIo { inner: stream, conn: conn.clone() });
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(conn.clone());
        router.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let served = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(served);
    let mut stopping = *stop.borrow();
    if stopping {
        served.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = served.as_mut() => {
                if let Err(e) = r {
                    tracing::trace!(error = %e, "connection closed with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

fn limit_error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Why a body could not be buffered.
enum BodyError {
    TooLarge,
    Unreadable,
}

async fn collect(body: Body, max: usize) -> Result<Vec<u8>, BodyError> {
    use futures_util::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if buf.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Middleware: buffers the request body, answering `408` when it has not
/// arrived within `limits.body_timeout` and `413` when it is larger than
/// `max_body_bytes`. Handlers after it get the whole body at once.
pub async fn read_body_within(
    State((limits, max_body_bytes)): State<(Limits, usize)>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(limits.body_timeout, collect(body, max_body_bytes)).await {
        Ok(Ok(b)) => b,
        Ok(Err(BodyError::TooLarge)) => {
            return limit_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {max_body_bytes} bytes"),
            )
        }
        Ok(Err(BodyError::Unreadable)) => {
            return limit_error(StatusCode::BAD_REQUEST, "the request body could not be read".into())
        }
        Err(_) => {
            return limit_error(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {} ms", limits.body_timeout.as_millis()),
            )
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}
