//! The server's side of load runs: integrity checks and a fresh measurement
//! window (token-protected), mounted only when `ivrx serve` runs against a
//! sandbox carrier — its embedded one, or a standalone `ivrx sandbox` named by
//! `TELNYX_API_BASE` — never against Telnyx (see
//! [`crate::server::ServerOptions::load_audit`]):
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/api/v1/audit/webhooks` `{"event_ids": [...]}` | which acknowledged webhooks the store does not hold → `{checked, missing}` |
//! | POST | `/api/v1/audit/calls` `{"call_control_ids": [...]}` | per call: conversation, ended, decisions, queue, connected agents → `{calls}` |
//! | POST | `/api/v1/stats/reset` | forgets the exact latency samples (a new measurement window) |
//!
//! Both audits commit everything queued first, so what was acknowledged
//! before the request is visible. At most [`MAX_AUDIT_BATCH`] ids per request.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::server::api::error;
use crate::server::App;

/// The routes, for the admin API.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/stats/reset", post(reset_stats))
        .route("/api/v1/audit/webhooks", post(webhooks))
        .route("/api/v1/audit/calls", post(calls))
}

/// Most ids one audit request may carry.
pub const MAX_AUDIT_BATCH: usize = 10_000;

/// `POST /api/v1/audit/webhooks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksBody {
    /// `data.id` of each webhook to look for.
    pub event_ids: Vec<String>,
}

/// `POST /api/v1/audit/calls` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsBody {
    /// The first leg of each call.
    pub call_control_ids: Vec<String>,
}

fn too_many(n: usize) -> Option<Response> {
    (n > MAX_AUDIT_BATCH).then(|| {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_ids",
            format!("{n} ids in one request; send at most {MAX_AUDIT_BATCH} per request"),
        )
    })
}

/// Commits everything queued, so that what was acknowledged is visible to the audit.
async fn flush(app: &App) -> Result<(), Response> {
    app.store.flush().await.map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, "store", e))
}

fn store_error(e: crate::store::StoreError) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "store", e)
}

/// `POST /api/v1/audit/webhooks`
pub async fn webhooks(State(app): State<Arc<App>>, Json(body): Json<WebhooksBody>) -> Response {
    if let Some(r) = too_many(body.event_ids.len()) {
        return r;
    }
    if let Err(r) = flush(&app).await {
        return r;
    }
    match app.store.missing_webhooks(&body.event_ids).await {
        Ok(missing) => Json(json!({"checked": body.event_ids.len(), "missing": missing})).into_response(),
        Err(e) => store_error(e),
    }
}

/// `POST /api/v1/audit/calls`
pub async fn calls(State(app): State<Arc<App>>, Json(body): Json<CallsBody>) -> Response {
    if let Some(r) = too_many(body.call_control_ids.len()) {
        return r;
    }
    if let Err(r) = flush(&app).await {
        return r;
    }
    match app.store.audit_calls(&body.call_control_ids).await {
        Ok(calls) => Json(json!({"calls": calls})).into_response(),
        Err(e) => store_error(e),
    }
}

/// `POST /api/v1/stats/reset`
pub async fn reset_stats(State(app): State<Arc<App>>) -> Response {
    app.metrics.decision_samples.reset();
    app.metrics.ack_samples.reset();
    Json(json!({"status": "reset"})).into_response()
}
