//! How a conversation's utterances are scored. [`Engine`] is the configured
//! engine; [`Scoring`] is one call's backend over it (local, Symbl text or
//! Symbl PSTN), which owns what the engines share: scoring inline or in the
//! background, the fall back to the local engine for good once the external
//! engine fails or falls behind, and the storage of Symbl's summary of the
//! call ([`store_summary`], which the PSTN link uses too).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::worker::WorkerMsg;
use super::Shared;
use crate::intel::{Score, Scorer};
use crate::server::symbl_link::{DialIns, LinkContext, PstnLink};
use crate::session::{Effect, Input, ScoreRequest, Session};
use crate::store::SharedStore;
use crate::symbl::{with_deadline, SymblCall, SymblEngine};

/// Utterances that may wait for Symbl in text mode; one more and the call
/// falls back to the local engine for good (Symbl is that far behind).
pub(crate) const SYMBL_BACKLOG: usize = 64;

/// How utterances are scored.
#[derive(Clone)]
pub enum Engine {
    /// A synchronous engine with no I/O (the local engine): scored inline.
    Local(Arc<dyn Scorer>),
    /// Symbl (text mode): one conversation per call, scored in order with a
    /// deadline; on any failure the call falls back to `local` for good.
    Symbl {
        /// The Symbl engine.
        symbl: SymblEngine,
        /// The fallback.
        local: Arc<dyn Scorer>,
        /// Longest wait for one score.
        deadline: Duration,
    },
    /// Symbl (PSTN mode): Symbl dials into a conference with the caller and
    /// its transcripts are the caller's utterances (see
    /// [`crate::server::symbl_link`]); on failure the call falls back to
    /// Telnyx transcription and `local`.
    SymblPstn {
        /// The Symbl engine.
        symbl: SymblEngine,
        /// The fallback, and the trackers run on Symbl's transcripts.
        local: Arc<dyn Scorer>,
        /// Longest wait for one score.
        deadline: Duration,
        /// The number Symbl dials (reserved for it).
        dial_in: String,
        /// How long Symbl has to call in and press its code once asked.
        join_timeout: Duration,
        /// How long Symbl's answered leg has to press its code.
        code_timeout: Duration,
    },
}

impl Engine {
    /// The local engine: the engine itself, or the external one's fallback.
    pub fn local(&self) -> &Arc<dyn Scorer> {
        match self {
            Engine::Local(l) => l,
            Engine::Symbl { local, .. } | Engine::SymblPstn { local, .. } => local,
        }
    }

    /// The number Symbl dials, in PSTN mode.
    pub fn dial_in(&self) -> Option<&str> {
        match self {
            Engine::SymblPstn { dial_in, .. } => Some(dial_in),
            _ => None,
        }
    }

    /// The calls to the dial-in number this engine waits for (none unless PSTN mode).
    pub(super) fn dial_ins(&self) -> DialIns {
        match self {
            Engine::SymblPstn { dial_in, code_timeout, .. } => {
                DialIns::new(Some(dial_in.clone()), u64::try_from(code_timeout.as_millis()).unwrap_or(u64::MAX))
            }
            _ => DialIns::default(),
        }
    }
}

/// One call's scoring backend.
pub(super) struct Scoring {
    shared: Arc<Shared>,
    dial_ins: Arc<DialIns>,
    conv: String,
    /// The call's worker: scores from the background come back to it.
    worker: mpsc::UnboundedSender<WorkerMsg>,
    /// Symbl text mode: the call's queue, once the first utterance went.
    queue: Option<mpsc::Sender<(u32, String)>>,
    /// Symbl text mode: the call's Symbl conversation, until its summary is asked for.
    call: Option<SymblCall>,
    /// PSTN mode: the call's link to Symbl, once asked to dial in.
    pstn: Option<PstnLink>,
    /// True once the external engine failed for this call (or while replaying).
    local_only: bool,
}

impl Scoring {
    /// The backend of conversation `conv`, reporting to its worker.
    pub(super) fn new(
        shared: Arc<Shared>,
        dial_ins: Arc<DialIns>,
        conv: String,
        worker: mpsc::UnboundedSender<WorkerMsg>,
    ) -> Self {
        Self { shared, dial_ins, conv, worker, queue: None, call: None, pstn: None, local_only: false }
    }

    /// Scores with the local engine.
    pub(super) fn local(&self, text: &str) -> Score {
        self.shared.engine.local().score(text)
    }

    /// Scores an utterance: inline with the local engine, or in the
    /// background with the external engine (answered later with
    /// [`WorkerMsg::Scored`], [`WorkerMsg::ScoreFailed`] or a Symbl failure).
    pub(super) fn score(&mut self, req: ScoreRequest) -> Option<Score> {
        let ScoreRequest { seq, text, refs, .. } = req;
        if let (Some(link), false, false) = (&self.pstn, refs.is_empty(), self.local_only) {
            link.score(seq, text, refs);
            return None;
        }
        let Engine::Symbl { symbl, deadline, .. } = &self.shared.engine else { return Some(self.local(&text)) };
        if self.local_only {
            return Some(self.local(&text));
        }
        let queue = self.queue.get_or_insert_with(|| {
            let call = SymblCall::new();
            let (tx, rx) = mpsc::channel(SYMBL_BACKLOG);
            tokio::spawn(run_symbl_scorer(symbl.clone(), call.clone(), *deadline, rx, self.worker.clone()));
            self.call = Some(call);
            tx
        });
        // Full: Symbl is too far behind for this call; its answer is a failure.
        if let Err(e) = queue.try_send((seq, text)) {
            let (error, (seq, text)) = match e {
                TrySendError::Full(u) => (format!("Symbl fell behind: {SYMBL_BACKLOG} utterances waiting"), u),
                TrySendError::Closed(u) => ("Symbl's scorer for this call stopped".to_string(), u),
            };
            let _ = self.worker.send(WorkerMsg::ScoreFailed { seq, text, error });
        }
        None
    }

    /// Stays on the local engine for good; true the first time.
    pub(super) fn fall_back(&mut self) -> bool {
        !std::mem::replace(&mut self.local_only, true)
    }

    /// Scores locally whatever is replayed until [`Scoring::end_replay`]: a
    /// replayed call must not wait on the network. Returns what to restore.
    pub(super) fn begin_replay(&mut self) -> bool {
        std::mem::replace(&mut self.local_only, true)
    }

    /// Ends a replay begun with [`Scoring::begin_replay`].
    pub(super) fn end_replay(&mut self, was_local_only: bool) {
        self.local_only = was_local_only;
    }

    /// Scores locally, at once, every utterance the session still waits for
    /// (the external engine failed, or the worker is leaving and the
    /// conversation's record must end); the session's answer, in order.
    pub(super) fn score_waiting_locally(&self, session: &mut Session, at: DateTime<Utc>) -> Vec<Effect> {
        let mut effects = Vec::new();
        for req in session.unscored() {
            let score = self.local(&req.text);
            effects.extend(session.handle(Input::Scored { seq: req.seq, score, at }));
        }
        effects
    }

    /// PSTN mode: asks Symbl to dial into the call; false when Symbl is not configured.
    pub(super) fn start_pstn(&mut self) -> bool {
        if self.pstn.is_some() {
            return true;
        }
        let Engine::SymblPstn { symbl, local, deadline, dial_in, join_timeout, .. } = &self.shared.engine else {
            return false;
        };
        let ctx = LinkContext {
            symbl: symbl.clone(),
            local: local.clone(),
            deadline: *deadline,
            dial_in: dial_in.clone(),
            join_timeout: *join_timeout,
            dial_ins: self.dial_ins.clone(),
            store: self.shared.store.clone(),
        };
        self.pstn = Some(PstnLink::start(ctx, self.conv.clone(), self.worker.clone()));
        true
    }

    /// PSTN mode: Symbl's leg is on the call.
    pub(super) fn pstn_arrived(&self) {
        if let Some(link) = &self.pstn {
            link.arrived();
        }
    }

    /// PSTN mode: Symbl leaves the call; unless it `failed`, its summary is stored.
    pub(super) fn stop_pstn(&mut self, failed: bool) {
        if let Some(link) = self.pstn.take() {
            link.stop(!failed);
        }
    }

    /// The call ended: in text mode, Symbl's summary is stored in the background.
    pub(super) fn finish(&mut self) {
        let Engine::Symbl { symbl, deadline, .. } = &self.shared.engine else { return };
        let Some(call) = self.call.take() else { return };
        if self.local_only || call.conversation_id().is_none() {
            return;
        }
        let (symbl, store, conv, deadline) = (symbl.clone(), self.shared.store.clone(), self.conv.clone(), *deadline);
        tokio::spawn(async move { store_summary(&symbl, &store, &conv, &call, deadline).await });
    }
}

/// Stores what Symbl made of a whole call (topics, trackers), waiting four
/// times the per-request deadline for it.
pub(crate) async fn store_summary(
    symbl: &SymblEngine,
    store: &SharedStore,
    conv: &str,
    call: &SymblCall,
    deadline: Duration,
) {
    match with_deadline(deadline * 4, "topics and trackers", symbl.finish(call)).await {
        Ok(summary) => {
            drop(store.record_insights(conv, "symbl", serde_json::to_value(summary).unwrap_or_default()));
        }
        Err(e) => tracing::warn!(conversation = %conv, error = %e, "Symbl topics and trackers unavailable"),
    }
}

/// Scores one call's utterances with Symbl, one at a time and in order. After
/// the first failure every remaining utterance is handed back at once, so the
/// call is never held up twice.
async fn run_symbl_scorer(
    symbl: SymblEngine,
    call: SymblCall,
    deadline: Duration,
    mut rx: mpsc::Receiver<(u32, String)>,
    worker: mpsc::UnboundedSender<WorkerMsg>,
) {
    let mut failed: Option<String> = None;
    while let Some((seq, text)) = rx.recv().await {
        if let Some(error) = &failed {
            let _ = worker.send(WorkerMsg::ScoreFailed { seq, text, error: error.clone() });
            continue;
        }
        match symbl.score_utterance_within(&call, &text, deadline).await {
            Ok(score) => {
                let _ = worker.send(WorkerMsg::Scored { seq, score });
            }
            Err(e) => {
                let error = format!("{} ({})", e, e.kind());
                failed = Some(error.clone());
                let _ = worker.send(WorkerMsg::ScoreFailed { seq, text, error });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::LocalEngine;
    use crate::server::metrics::Metrics;
    use crate::session::{SessionSettings, Speaker};
    use crate::store::{SqliteStore, StoreOptions};
    use crate::symbl::{Credentials, SymblClient, SymblConfig, SymblEngineOptions};
    use crate::telnyx::{ClientConfig, TelnyxClient};

    #[tokio::test]
    async fn an_utterance_beyond_the_symbl_backlog_is_a_symbl_failure_for_the_call() {
        crate::http::tls::install_crypto_provider();
        let nowhere = "http://127.0.0.1:9";
        let client = SymblClient::new(Credentials::new("id", "secret"), SymblConfig::new(nowhere)).unwrap();
        let symbl = SymblEngine::new(client, SymblEngineOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ivrx.db"), StoreOptions::default()).unwrap();
        let shared = Arc::new(Shared {
            settings: Arc::new(SessionSettings::default()),
            client: TelnyxClient::new(ClientConfig::new(format!("{nowhere}/v2"), "KEY")).unwrap(),
            engine: Engine::Symbl { symbl, local: Arc::new(LocalEngine::default()), deadline: Duration::from_secs(60) },
            store: Arc::new(store),
            live: Arc::default(),
            metrics: Arc::new(Metrics::new()),
            grace: Duration::from_secs(1),
            retry_window: Duration::from_secs(1),
            ownership: None,
        });
        let (worker, mut inbox) = mpsc::unbounded_channel();
        let mut scoring = Scoring::new(shared, Arc::default(), "c1".into(), worker);
        let req = |seq| ScoreRequest { seq, speaker: Speaker::Caller, text: "thanks".into(), refs: Vec::new() };
        // On this single-threaded runtime the scorer has not run yet: the backlog fills up.
        for seq in 0..SYMBL_BACKLOG as u32 {
            assert!(scoring.score(req(seq)).is_none(), "utterance {seq} waits for Symbl");
        }
        assert!(inbox.try_recv().is_err());
        assert!(scoring.score(req(SYMBL_BACKLOG as u32)).is_none());
        match inbox.try_recv() {
            Ok(WorkerMsg::ScoreFailed { seq, error, .. }) => {
                assert_eq!(seq, SYMBL_BACKLOG as u32);
                assert!(error.contains("fell behind"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        // The worker falls back on that failure: from then on, scores are local and at once.
        assert!(scoring.fall_back());
        assert!(!scoring.fall_back(), "once");
        assert_eq!(scoring.score(req(99)).map(|s| s.engine), Some(LocalEngine::default().score("thanks").engine));
    }
}
