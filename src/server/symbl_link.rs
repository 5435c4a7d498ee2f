//! Symbl in PSTN mode, on the server's side (the call's own logic is in
//! [`crate::session`]'s Symbl link):
//!
//! - [`DialIns`]: calls to the Symbl dial-in number, answered and held until
//!   they press a conversation's code (see [`crate::session::symbl_leg`]), then
//!   handed to that conversation;
//! - [`PstnLink`]: one task per call that asks Symbl to dial in with the
//!   call's code, follows the real-time subscription (interim transcripts and
//!   settled messages go to the call), scores the messages with Symbl's
//!   sentiment, and at the end asks Symbl to leave and stores its topics and
//!   trackers. Any failure is reported once ([`SymblEvent::Failed`]) and the
//!   task ends: the call falls back to Telnyx transcription and the local engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::calls::scoring::{store_summary, SYMBL_BACKLOG};
use super::calls::{WorkerInbox, WorkerMsg};
use crate::intel::{Label, Score, Scorer, TrackerHit};
use crate::session::symbl_leg::{DialIn, DialInLeg, DialInOutcome};
use crate::session::Command;
use crate::store::SharedStore;
use crate::symbl::{with_deadline, PstnSession, RealtimeEvent, ScoredMessage, SymblCall, SymblEngine, SymblError};
use crate::telnyx::events::{Direction, Event};

/// Digits in a conversation's code.
const CODE_DIGITS: usize = 10;
/// How often Symbl's messages are read while a score is awaited.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Calls to the Symbl dial-in number, and the codes conversations wait for.
#[derive(Debug, Default)]
pub struct DialIns {
    number: Option<String>,
    code_timeout_ms: u64,
    pending: Mutex<HashMap<String, DialIn>>,
    codes: Mutex<HashMap<String, String>>,
}

/// What became of a dial-in event.
#[derive(Debug)]
pub struct DialInStep {
    /// Commands for the leg, in order.
    pub commands: Vec<Command>,
    /// The leg and the conversation it belongs to, once identified.
    pub identified: Option<(DialInLeg, String)>,
}

impl DialIns {
    /// Dial-ins to `number` (`None`: not in PSTN mode, nothing is claimed);
    /// each leg has `code_timeout_ms` to press its code once answered.
    pub fn new(number: Option<String>, code_timeout_ms: u64) -> Self {
        Self { number, code_timeout_ms, ..Self::default() }
    }

    /// True when the event belongs to a leg being identified: one already
    /// pending, or a new inbound call to the dial-in number.
    pub fn claims(&self, event: &Event) -> bool {
        let Some(number) = &self.number else { return false };
        let Some(ccid) = event.call_control_id() else { return false };
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.contains_key(ccid) {
            return true;
        }
        let Event::CallInitiated(e) = event else { return false };
        let incoming = e.direction.as_ref().is_none_or(|d| *d == Direction::Incoming);
        if !incoming || e.to.as_deref() != Some(number.as_str()) {
            return false;
        }
        let leg = DialInLeg {
            call_control_id: ccid.to_string(),
            call_leg_id: e.ids.call_leg_id.clone(),
            call_session_id: e.ids.call_session_id.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
        };
        pending.insert(ccid.to_string(), DialIn::new(leg, self.code_timeout_ms));
        true
    }

    /// Runs a claimed event through its leg's state machine.
    pub fn handle(&self, event: &Event) -> DialInStep {
        let none = DialInStep { commands: Vec::new(), identified: None };
        let Some(ccid) = event.call_control_id() else { return none };
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(dial_in) = pending.get_mut(ccid) else { return none };
        if let Event::CallInitiated(_) = event {
            return DialInStep { commands: dial_in.start(), identified: None };
        }
        let (mut commands, outcome) = dial_in.handle(event);
        let identified = match outcome {
            None => return DialInStep { commands, identified: None },
            Some(DialInOutcome::Code(code)) => {
                let conv = self.codes.lock().unwrap_or_else(|p| p.into_inner()).remove(&code);
                match conv {
                    Some(conv) => Some((dial_in.leg().clone(), conv)),
                    None => {
                        tracing::warn!(
                            call = ccid,
                            "a call to the Symbl dial-in number pressed an unknown code; hung up"
                        );
                        commands.extend(dial_in.refuse().0);
                        None
                    }
                }
            }
            Some(DialInOutcome::Refused) => {
                tracing::warn!(call = ccid, "a call to the Symbl dial-in number pressed no code in time; hung up");
                None
            }
            Some(DialInOutcome::Gone) => None,
        };
        pending.remove(ccid);
        DialInStep { commands, identified }
    }

    /// A fresh code for a conversation, remembered until a leg presses it.
    pub fn expect(&self, conv: &str) -> String {
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        let mut rng = rand::thread_rng();
        loop {
            let code: String = (0..CODE_DIGITS).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
            if !codes.contains_key(&code) {
                codes.insert(code.clone(), conv.to_string());
                return code;
            }
        }
    }

    /// Forgets a code nobody pressed.
    pub fn forget(&self, code: &str) {
        self.codes.lock().unwrap_or_else(|p| p.into_inner()).remove(code);
    }
}

/// What the link reports to the call's worker.
#[derive(Debug, Clone, PartialEq)]
pub enum SymblEvent {
    /// Real-time text: interim, or settled messages (final) with their ids.
    Heard {
        /// The text.
        text: String,
        /// Settled.
        is_final: bool,
        /// The messages' ids (final only).
        message_ids: Vec<String>,
        /// When the last message ended, by Symbl's clock.
        at: Option<DateTime<Utc>>,
    },
    /// Symbl failed for this call.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

enum LinkMsg {
    Score { seq: u32, text: String, refs: Vec<String> },
    Arrived,
    Stop { summarize: bool },
}

/// What a link needs.
#[derive(Clone)]
pub struct LinkContext {
    /// The Symbl engine.
    pub symbl: SymblEngine,
    /// For the trackers found on Symbl's transcripts.
    pub local: Arc<dyn Scorer>,
    /// Longest wait for one score (and for each Symbl request).
    pub deadline: Duration,
    /// The number Symbl dials.
    pub dial_in: String,
    /// How long Symbl has to call in and press its code once asked.
    pub join_timeout: Duration,
    /// Codes waiting for Symbl's legs.
    pub dial_ins: Arc<DialIns>,
    /// Where the summary goes.
    pub store: SharedStore,
}

/// One call's link to Symbl (see the module docs). Dropping it makes Symbl leave.
pub struct PstnLink {
    /// Unbounded, so that the worker never waits for its link (which waits
    /// for the worker): what goes in is bounded anyway, one message per
    /// utterance made of Symbl's own transcripts (past [`SYMBL_BACKLOG`]
    /// waiting the link reports Symbl behind and stops), one `Arrived`, one `Stop`.
    tx: mpsc::UnboundedSender<LinkMsg>,
}

impl PstnLink {
    /// Asks Symbl to dial into conversation `conv`; reports to `worker`.
    pub fn start(ctx: LinkContext, conv: String, worker: WorkerInbox) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_link(ctx, conv, rx, worker));
        Self { tx }
    }

    /// Scores an utterance made of these Symbl messages (answered with
    /// `WorkerMsg::Scored`, or a failure).
    pub fn score(&self, seq: u32, text: String, refs: Vec<String>) {
        let _ = self.tx.send(LinkMsg::Score { seq, text, refs });
    }

    /// Symbl's leg is on the call (the join deadline no longer applies).
    pub fn arrived(&self) {
        let _ = self.tx.send(LinkMsg::Arrived);
    }

    /// Symbl leaves; with `summarize`, its topics and trackers are stored.
    pub fn stop(self, summarize: bool) {
        let _ = self.tx.send(LinkMsg::Stop { summarize });
    }
}

/// Reports to the worker, waiting for room (the worker never waits for the link).
async fn report(worker: &WorkerInbox, event: SymblEvent) {
    let _ = worker.send(WorkerMsg::Symbl(event)).await;
}

async fn run_link(ctx: LinkContext, conv: String, mut rx: mpsc::UnboundedReceiver<LinkMsg>, worker: WorkerInbox) {
    let code = ctx.dial_ins.expect(&conv);
    let dtmf = format!("{code}#");
    let mut early = Vec::new();
    let started = tokio::select! {
        r = with_deadline(ctx.deadline * 2, "asking Symbl to dial in", ctx.symbl.start_pstn(&ctx.dial_in, Some(&dtmf))) => r,
        () = stopped(&mut rx, &mut early) => {
            ctx.dial_ins.forget(&code);
            return;
        }
    };
    let session = match started {
        Ok(s) => s,
        Err(e) => {
            ctx.dial_ins.forget(&code);
            report(&worker, SymblEvent::Failed { reason: format!("Symbl could not dial in: {e}") }).await;
            return;
        }
    };
    tracing::info!(conversation = %conv, connection = %session.connection.connection_id, "Symbl is dialling in");
    let subscription = with_deadline(ctx.deadline * 2, "subscribing", ctx.symbl.subscribe(&session)).await;
    let mut sub = match subscription {
        Ok(s) => s,
        Err(e) => {
            ctx.dial_ins.forget(&code);
            leave(&ctx, &session).await;
            report(&worker, SymblEvent::Failed { reason: format!("Symbl's real-time results are unavailable: {e}") })
                .await;
            return;
        }
    };
    let (score_tx, score_rx) = mpsc::channel(SYMBL_BACKLOG);
    tokio::spawn(run_scorer(ctx.clone(), session.call.clone(), score_rx, worker.clone()));
    let join_by = Instant::now() + ctx.join_timeout;
    let mut arrived = false;
    let mut behind = false;
    for msg in early {
        match msg {
            LinkMsg::Score { seq, text, refs } => behind |= !queue_score(&score_tx, &worker, (seq, text, refs)).await,
            LinkMsg::Arrived => arrived = true,
            LinkMsg::Stop { .. } => {}
        }
    }
    let summarize = !behind
        && loop {
            tokio::select! {
                event = sub.next_event() => match event {
                    Some(Ok(event)) => {
                        if let Some(heard) = heard(event) {
                            report(&worker, heard).await;
                        }
                    }
                    Some(Err(SymblError::Decode { message, .. })) => {
                        tracing::debug!(conversation = %conv, %message, "unreadable real-time message from Symbl; skipped");
                    }
                    Some(Err(e)) => {
                        report(&worker, SymblEvent::Failed { reason: format!("Symbl's real-time connection failed: {e}") }).await;
                        break false;
                    }
                    None => {
                        report(&worker, SymblEvent::Failed { reason: "Symbl closed its real-time connection".into() }).await;
                        break false;
                    }
                },
                msg = rx.recv() => match msg {
                    Some(LinkMsg::Score { seq, text, refs }) => {
                        if !queue_score(&score_tx, &worker, (seq, text, refs)).await {
                            break false;
                        }
                    }
                    Some(LinkMsg::Arrived) => arrived = true,
                    Some(LinkMsg::Stop { summarize }) => break summarize,
                    None => break false,
                },
                () = tokio::time::sleep_until(join_by), if !arrived => {
                    let reason = format!("Symbl did not call in within {} ms", ctx.join_timeout.as_millis());
                    report(&worker, SymblEvent::Failed { reason }).await;
                    break false;
                }
            }
        };
    ctx.dial_ins.forget(&code);
    drop(score_tx);
    leave(&ctx, &session).await;
    sub.close().await;
    if summarize {
        store_summary(&ctx.symbl, &ctx.store, &conv, &session.call, ctx.deadline).await;
    }
}

/// An utterance to score: its number, its text and its Symbl message ids.
type ToScore = (u32, String, Vec<String>);

/// Hands an utterance to the scorer. False when Symbl is [`SYMBL_BACKLOG`]
/// utterances behind: that is reported as Symbl failing for the call. (A
/// scorer that has stopped has reported its failure already.)
async fn queue_score(score_tx: &mpsc::Sender<ToScore>, worker: &WorkerInbox, u: ToScore) -> bool {
    match score_tx.try_send(u) {
        Err(mpsc::error::TrySendError::Full(_)) => {
            let reason = format!("Symbl fell behind: {SYMBL_BACKLOG} utterances waiting for their score");
            report(worker, SymblEvent::Failed { reason }).await;
            false
        }
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
    }
}

/// Waits until the worker asks the link to stop (or goes away), keeping any
/// other message for later.
async fn stopped(rx: &mut mpsc::UnboundedReceiver<LinkMsg>, early: &mut Vec<LinkMsg>) {
    while let Some(msg) = rx.recv().await {
        if let LinkMsg::Stop { .. } = msg {
            return;
        }
        early.push(msg);
    }
}

async fn leave(ctx: &LinkContext, session: &PstnSession) {
    if let Err(e) = with_deadline(ctx.deadline, "stopping the connection", ctx.symbl.stop_pstn(session)).await {
        tracing::debug!(error = %e, "Symbl's connection could not be stopped (it may be gone already)");
    }
}

/// The text of a real-time event that matters to the call: interim
/// transcripts, and settled messages (one utterance per `message_response`).
fn heard(event: RealtimeEvent) -> Option<SymblEvent> {
    match event {
        RealtimeEvent::Transcript(t) if !t.is_final && !t.text().trim().is_empty() => {
            Some(SymblEvent::Heard { text: t.text().to_string(), is_final: false, message_ids: Vec::new(), at: None })
        }
        RealtimeEvent::Messages(m) => {
            let texts: Vec<&str> = m.messages.iter().map(|m| m.text().trim()).filter(|t| !t.is_empty()).collect();
            let ids: Vec<String> = m.messages.iter().filter_map(|m| m.id.clone()).collect();
            if texts.is_empty() {
                return None;
            }
            let at = m.messages.iter().filter_map(|m| end_time(m.duration.as_ref())).max();
            Some(SymblEvent::Heard { text: texts.join(" "), is_final: true, message_ids: ids, at })
        }
        _ => None,
    }
}

fn end_time(duration: Option<&serde_json::Value>) -> Option<DateTime<Utc>> {
    let s = duration?.get("endTime")?.as_str()?;
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Scores utterances in order from their Symbl messages' sentiment.
async fn run_scorer(ctx: LinkContext, call: SymblCall, mut rx: mpsc::Receiver<ToScore>, worker: WorkerInbox) {
    let mut scored: HashMap<String, ScoredMessage> = HashMap::new();
    while let Some((seq, text, refs)) = rx.recv().await {
        match wait_for_scores(&ctx, &call, &refs, &mut scored).await {
            Ok(()) => {
                let messages: Vec<&ScoredMessage> = refs.iter().filter_map(|id| scored.get(id)).collect();
                let score = combine(&messages, ctx.local.score(&text).trackers);
                let _ = worker.send(WorkerMsg::Scored { seq, score }).await;
            }
            Err(e) => {
                report(&worker, SymblEvent::Failed { reason: format!("{e} ({})", e.kind()) }).await;
                return;
            }
        }
    }
}

/// Reads the conversation's messages until every one of `refs` has its sentiment.
async fn wait_for_scores(
    ctx: &LinkContext,
    call: &SymblCall,
    refs: &[String],
    scored: &mut HashMap<String, ScoredMessage>,
) -> Result<(), SymblError> {
    let started = Instant::now();
    let deadline = started + ctx.deadline;
    let timeout = || SymblError::Timeout { what: "scoring an utterance".into(), after: ctx.deadline };
    loop {
        if refs.iter().all(|id| scored.contains_key(id)) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout());
        }
        let fresh = with_deadline(left, "scoring an utterance", ctx.symbl.score_new_messages(call)).await?;
        let got_any = !fresh.is_empty();
        scored.extend(fresh.into_iter().map(|m| (m.message.id.clone(), m)));
        if !got_any && !refs.iter().all(|id| scored.contains_key(id)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout());
            }
            tokio::time::sleep(POLL_INTERVAL.min(left)).await;
        }
    }
}

/// One utterance's score from its messages: mean polarity, Symbl's tracker
/// hits and ivrx's own trackers on the transcript (Symbl's Telephony API takes
/// no tracker definitions per call).
fn combine(messages: &[&ScoredMessage], local_trackers: Vec<TrackerHit>) -> Score {
    let n = messages.len().max(1) as f64;
    let score = messages.iter().map(|m| m.score.score).sum::<f64>() / n;
    let mut trackers: Vec<TrackerHit> = Vec::new();
    for hit in messages.iter().flat_map(|m| m.score.trackers.iter().cloned()).chain(local_trackers) {
        if !trackers.iter().any(|t| t.tracker == hit.tracker) {
            trackers.push(hit);
        }
    }
    Score { score, label: Label::from_score(score), trackers, engine: crate::symbl::ENGINE_NAME.into() }
}

impl std::fmt::Debug for PstnLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PstnLink").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::symbl::{ConversationMessage, Polarity, Sentiment};

    fn scored(id: &str, polarity: f64, trackers: &[&str]) -> ScoredMessage {
        ScoredMessage {
            message: ConversationMessage {
                id: id.into(),
                sentiment: Some(Sentiment { polarity: Polarity { score: polarity }, suggested: None }),
                ..ConversationMessage::default()
            },
            score: Score {
                score: polarity,
                label: Label::from_score(polarity),
                trackers: trackers.iter().map(|t| TrackerHit::new(*t, *t)).collect(),
                engine: "symbl".into(),
            },
        }
    }

    #[test]
    fn scores_average_messages_and_merge_trackers() {
        let (a, b) = (scored("1", -0.8, &["abuse"]), scored("2", -0.2, &[]));
        let s =
            combine(&[&a, &b], vec![TrackerHit::new("asks_for_human", "real person"), TrackerHit::new("abuse", "x")]);
        assert!((s.score + 0.5).abs() < 1e-9);
        assert_eq!(s.label, Label::Negative);
        assert_eq!(s.engine, "symbl");
        let names: Vec<_> = s.trackers.iter().map(|t| t.tracker.as_str()).collect();
        assert_eq!(names, ["abuse", "asks_for_human"]);
    }

    #[test]
    fn only_interim_transcripts_and_settled_messages_matter() {
        let ev = |v: serde_json::Value| heard(RealtimeEvent::parse(&v.to_string()).unwrap());
        assert_eq!(
            ev(json!({"type": "transcript_response", "isFinal": false, "payload": {"content": "i want"}})),
            Some(SymblEvent::Heard { text: "i want".into(), is_final: false, message_ids: vec![], at: None })
        );
        assert_eq!(ev(json!({"type": "transcript_response", "isFinal": true, "payload": {"content": "i want"}})), None);
        let m = ev(json!({"type": "message_response", "messages": [
            {"id": "m1", "payload": {"content": "I want a person."}, "duration": {"endTime": "2024-01-01T00:00:05Z"}},
            {"id": "m2", "payload": {"content": "Now."}, "duration": {"endTime": "2024-01-01T00:00:06Z"}}]}));
        let Some(SymblEvent::Heard { text, is_final: true, message_ids, at }) = m else { panic!("{m:?}") };
        assert_eq!(text, "I want a person. Now.");
        assert_eq!(message_ids, ["m1", "m2"]);
        assert_eq!(at.unwrap().to_rfc3339(), "2024-01-01T00:00:06+00:00");
        assert_eq!(ev(json!({"type": "topic_response", "topics": []})), None);
        assert_eq!(ev(json!({"type": "message_response", "messages": []})), None);
    }

    #[test]
    fn dial_in_legs_are_claimed_by_the_number_they_call_and_identified_by_code() {
        let d = DialIns::new(Some("+15550009999".into()), 15_000);
        let init = |to: &str| {
            Event::from_parts(
                "call.initiated",
                &json!({"call_control_id": "v3:s", "direction": "incoming", "to": to, "from": "+1555"}),
            )
            .unwrap()
        };
        assert!(!d.claims(&init("+15550000000")), "callers of the IVR are not Symbl");
        assert!(d.claims(&init("+15550009999")));
        assert_eq!(d.handle(&init("+15550009999")).commands.len(), 1, "answered");
        let code = d.expect("conv-1");
        assert_eq!(code.len(), CODE_DIGITS);
        let mut identified = None;
        for k in code.chars().chain(['#']) {
            let e =
                Event::from_parts("call.dtmf.received", &json!({"call_control_id": "v3:s", "digit": k.to_string()}))
                    .unwrap();
            assert!(d.claims(&e));
            if let Some(i) = d.handle(&e).identified {
                identified = Some(i);
            }
        }
        let (leg, conv) = identified.expect("identified");
        assert_eq!((leg.call_control_id.as_str(), conv.as_str()), ("v3:s", "conv-1"));
        let later = Event::from_parts("call.hangup", &json!({"call_control_id": "v3:s"})).unwrap();
        assert!(!d.claims(&later), "once identified, the leg belongs to its conversation");
        assert!(!DialIns::new(None, 15_000).claims(&init("+15550009999")));
    }

    #[test]
    fn a_wrong_code_is_hung_up() {
        let d = DialIns::new(Some("+1999".into()), 15_000);
        let ev = |kind: &str, extra: serde_json::Value| {
            let mut p = json!({"call_control_id": "v3:x", "direction": "incoming", "to": "+1999"});
            p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            Event::from_parts(kind, &p).unwrap()
        };
        assert!(d.claims(&ev("call.initiated", json!({}))));
        d.handle(&ev("call.initiated", json!({})));
        d.expect("conv");
        let step = d.handle(&ev("call.gather.ended", json!({"digits": "123", "status": "valid"})));
        assert!(step.identified.is_none());
        assert_eq!(step.commands.iter().map(Command::action_name).collect::<Vec<_>>(), ["hangup"]);
    }
}
