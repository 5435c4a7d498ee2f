//! The Symbl engine: scores utterances with Symbl's sentiment and trackers.
//!
//! - **Text mode** (ivrx transcribes, Symbl scores): one Symbl conversation per
//!   call, created by the first utterance (`POST /v1/process/text`) and appended
//!   to afterwards (`PUT`); each utterance waits for its job, then reads the
//!   messages with sentiment and the detected trackers.
//! - **PSTN mode** (Symbl dials into the call, as the original demo did):
//!   [`SymblEngine::start_pstn`], follow [`SymblEngine::subscribe`], and after each
//!   `message_response` read sentiment with [`SymblEngine::score_new_messages`].
//!
//! Every method returns a typed [`SymblError`] and every wait is bounded, so the
//! server can give a call a deadline ([`with_deadline`]) and fall back to the
//! local engine on any error.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use ivrx_intel::{Label, Score, TrackerConfig, TrackerHit};
use serde::{Deserialize, Serialize};

use super::api::{
    ConnectRequest, Connection, ConversationMessage, DetectedTracker, TextMessage, TextRequest, TrackerSpec,
};
use super::client::SymblClient;
use super::error::SymblError;
use super::realtime::RealtimeSubscription;

/// The engine name stored with every score.
pub const ENGINE_NAME: &str = "symbl";

/// Seconds of synthetic time given to each line by [`SymblEngine::score_texts`],
/// so that the messages Symbl returns can be mapped back to their line.
const LINE_SLOT_SECS: i64 = 10;

/// How the engine talks to Symbl.
#[derive(Debug, Clone, PartialEq)]
pub struct SymblEngineOptions {
    /// Speaker name sent with every utterance.
    pub speaker: String,
    /// How often a job's status is polled.
    pub poll_interval: Duration,
    /// How long a job may run before scoring gives up with a timeout.
    pub job_deadline: Duration,
    /// Trackers sent with each conversation (Symbl reports which matched).
    pub trackers: Vec<TrackerConfig>,
}

impl Default for SymblEngineOptions {
    fn default() -> Self {
        Self {
            speaker: "Caller".into(),
            poll_interval: Duration::from_millis(250),
            job_deadline: Duration::from_secs(10),
            trackers: Vec::new(),
        }
    }
}

struct CallInner {
    conversation_id: Mutex<Option<String>>,
    /// Held while an utterance is scored, so utterances of one call go to Symbl
    /// in order; holds the ids of messages already scored.
    seen: tokio::sync::Mutex<HashSet<String>>,
}

/// One call's Symbl conversation. Cheap to clone; clones share the conversation.
#[derive(Clone)]
pub struct SymblCall {
    inner: Arc<CallInner>,
}

impl Default for SymblCall {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SymblCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymblCall").field("conversation_id", &self.conversation_id()).finish()
    }
}

impl SymblCall {
    /// A call with no Symbl conversation yet (text mode creates it on the first utterance).
    pub fn new() -> Self {
        Self {
            inner: Arc::new(CallInner {
                conversation_id: Mutex::new(None),
                seen: tokio::sync::Mutex::new(HashSet::new()),
            }),
        }
    }

    /// A call following an existing Symbl conversation (PSTN mode).
    pub fn for_conversation(conversation_id: impl Into<String>) -> Self {
        let call = Self::new();
        call.set_conversation_id(conversation_id.into());
        call
    }

    /// The Symbl conversation id, once there is one.
    pub fn conversation_id(&self) -> Option<String> {
        self.inner.conversation_id.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_conversation_id(&self, id: String) {
        *self.inner.conversation_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
    }
}

/// A message of a conversation with its score (PSTN mode).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredMessage {
    /// The message as Symbl reports it.
    pub message: ConversationMessage,
    /// Its score.
    pub score: Score,
}

/// A topic of a finished conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicSummary {
    /// The topic.
    pub text: String,
    /// Relevance, 0..1, when Symbl gave one.
    pub score: Option<f64>,
    /// Sentiment polarity around the topic, -1..1.
    pub sentiment: Option<f64>,
    /// Label for `sentiment`.
    pub label: Option<Label>,
    /// Messages that mention it.
    pub message_ids: Vec<String>,
}

/// A tracker that matched in a finished conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerSummary {
    /// The tracker's name.
    pub name: String,
    /// Number of (phrase, message) matches.
    pub matches: usize,
    /// The phrases that matched.
    pub phrases: Vec<String>,
    /// The messages they matched in.
    pub message_ids: Vec<String>,
}

/// What Symbl made of a whole conversation; stored when a call ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SymblSummary {
    /// The conversation (`None` when the call never reached Symbl).
    pub conversation_id: Option<String>,
    /// Topics with their sentiment.
    pub topics: Vec<TopicSummary>,
    /// Trackers that matched.
    pub trackers: Vec<TrackerSummary>,
}

/// Symbl dialled into a call.
#[derive(Debug, Clone)]
pub struct PstnSession {
    /// The telephony connection.
    pub connection: Connection,
    /// The conversation, for [`SymblEngine::score_new_messages`] and [`SymblEngine::finish`].
    pub call: SymblCall,
}

/// The Symbl engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SymblEngine {
    client: SymblClient,
    options: SymblEngineOptions,
}

/// Runs `fut`, failing with [`SymblError::Timeout`] after `deadline`.
pub async fn with_deadline<T>(
    deadline: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, SymblError>>,
) -> Result<T, SymblError> {
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| Err(SymblError::Timeout { what: what.to_string(), after: deadline }))
}

impl SymblEngine {
    /// An engine on this client.
    pub fn new(client: SymblClient, options: SymblEngineOptions) -> Self {
        Self { client, options }
    }

    /// The REST client.
    pub fn client(&self) -> &SymblClient {
        &self.client
    }

    /// The options.
    pub fn options(&self) -> &SymblEngineOptions {
        &self.options
    }

    /// The same engine, waiting up to `deadline` for each processing job.
    pub fn with_job_deadline(mut self, deadline: Duration) -> Self {
        self.options.job_deadline = deadline;
        self
    }

    fn tracker_specs(&self) -> Vec<TrackerSpec> {
        self.options.trackers.iter().map(TrackerSpec::from).collect()
    }

    /// Scores one utterance of a call (text mode): creates the call's
    /// conversation on the first utterance and appends afterwards, waits for the
    /// job (up to [`SymblEngineOptions::job_deadline`]) and scores the new
    /// message(s). When Symbl splits the utterance into several messages, the
    /// score is their mean polarity and the trackers are those of any of them.
    pub async fn score_utterance(&self, call: &SymblCall, text: &str) -> Result<Score, SymblError> {
        let mut seen = call.inner.seen.lock().await;
        let mut request = TextRequest::new(vec![TextMessage::new(&self.options.speaker, text)]);
        request.trackers = self.tracker_specs();
        let job = match call.conversation_id() {
            Some(id) => self.client.append_text(&id, &request).await?,
            None => {
                let job = self.client.process_text(&request).await?;
                call.set_conversation_id(job.conversation_id.clone());
                job
            }
        };
        self.client.wait_for_job(&job.job_id, self.options.poll_interval, self.options.job_deadline).await?;
        let messages = self.client.messages(&job.conversation_id).await?;
        let unseen: Vec<ConversationMessage> = messages.into_iter().filter(|m| !seen.contains(&m.id)).collect();
        seen.extend(unseen.iter().map(|m| m.id.clone()));
        let mine = messages_of(text, unseen);
        if mine.is_empty() {
            return Err(SymblError::MissingResult { what: format!("message for {:?}", shorten(text)) });
        }
        let trackers = self.client.trackers_detected(&job.conversation_id).await?;
        score_messages(&mine.iter().collect::<Vec<_>>(), &trackers)
    }

    /// [`Self::score_utterance`], failing with a timeout after `deadline`.
    pub async fn score_utterance_within(
        &self,
        call: &SymblCall,
        text: &str,
        deadline: Duration,
    ) -> Result<Score, SymblError> {
        with_deadline(deadline, "scoring an utterance", self.score_utterance(call, text)).await
    }

    /// Scores the messages of the call's conversation not scored before (PSTN
    /// mode: call it after each `message_response`). Messages Symbl has not
    /// given a sentiment yet are left for the next call. Empty when the call
    /// has no conversation.
    pub async fn score_new_messages(&self, call: &SymblCall) -> Result<Vec<ScoredMessage>, SymblError> {
        let Some(conversation_id) = call.conversation_id() else { return Ok(Vec::new()) };
        let mut seen = call.inner.seen.lock().await;
        let messages = self.client.messages(&conversation_id).await?;
        let fresh: Vec<ConversationMessage> =
            messages.into_iter().filter(|m| !seen.contains(&m.id) && m.sentiment.is_some()).collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let trackers = self.client.trackers_detected(&conversation_id).await?;
        let mut scored = Vec::with_capacity(fresh.len());
        for message in fresh {
            let score = score_messages(&[&message], &trackers)?;
            scored.push(ScoredMessage { message, score });
        }
        seen.extend(scored.iter().map(|s| s.message.id.clone()));
        Ok(scored)
    }

    /// Topics and trackers of the call's conversation, once the call ended.
    /// Waits for an utterance still being scored. Empty when the call never
    /// reached Symbl.
    pub async fn finish(&self, call: &SymblCall) -> Result<SymblSummary, SymblError> {
        let _turn = call.inner.seen.lock().await;
        match call.conversation_id() {
            Some(id) => self.summarize(&id).await,
            None => Ok(SymblSummary::default()),
        }
    }

    /// Topics (with sentiment) and trackers of any conversation.
    pub async fn summarize(&self, conversation_id: &str) -> Result<SymblSummary, SymblError> {
        let (topics, trackers) =
            tokio::join!(self.client.topics(conversation_id), self.client.trackers_detected(conversation_id));
        let topics = topics?
            .into_iter()
            .map(|t| {
                let sentiment = t.sentiment.as_ref().map(|s| clamp_polarity(s.polarity.score));
                TopicSummary {
                    text: t.text,
                    score: t.score,
                    sentiment,
                    label: sentiment.map(Label::from_score),
                    message_ids: t.message_ids,
                }
            })
            .collect();
        let trackers = trackers?.iter().map(summarize_tracker).collect();
        Ok(SymblSummary { conversation_id: Some(conversation_id.to_string()), topics, trackers })
    }

    /// Scores lines in one conversation (for `ivrx score --engine symbl`):
    /// one text job with every line, then one score per line, in order.
    pub async fn score_texts(&self, texts: &[String]) -> Result<Vec<Score>, SymblError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let base = DateTime::<Utc>::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default();
        let slot = |i: usize, end: bool| {
            let secs = (i as i64 + i64::from(end)) * LINE_SLOT_SECS;
            (base + chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
        };
        let messages = texts
            .iter()
            .enumerate()
            .map(|(i, t)| TextMessage::new(&self.options.speaker, t).with_duration(slot(i, false), slot(i, true)))
            .collect();
        let mut request = TextRequest::new(messages);
        request.trackers = self.tracker_specs();
        let job = self.client.process_text(&request).await?;
        self.client.wait_for_job(&job.job_id, self.options.poll_interval, self.options.job_deadline).await?;
        let messages = self.client.messages(&job.conversation_id).await?;
        let trackers = self.client.trackers_detected(&job.conversation_id).await?;

        let mut per_line: Vec<Vec<&ConversationMessage>> = vec![Vec::new(); texts.len()];
        for m in &messages {
            if let Some(i) = line_of(m, base, texts) {
                per_line[i].push(m);
            }
        }
        per_line
            .iter()
            .enumerate()
            .map(|(i, ms)| {
                if ms.is_empty() {
                    Err(SymblError::MissingResult {
                        what: format!("message for line {} ({:?})", i + 1, shorten(&texts[i])),
                    })
                } else {
                    score_messages(ms, &trackers)
                }
            })
            .collect()
    }

    /// Asks Symbl to dial `phone_number` (then press `dtmf`) and join the call.
    /// The Telephony API takes the number as digits only (`+1 (408) 292-4837`
    /// is sent as `14082924837`).
    pub async fn start_pstn(&self, phone_number: &str, dtmf: Option<&str>) -> Result<PstnSession, SymblError> {
        let digits: String = phone_number.chars().filter(char::is_ascii_digit).collect();
        let connection = self.client.connect_pstn(&ConnectRequest::pstn(&digits, dtmf)).await?;
        let Some(conversation_id) = connection.conversation_id.clone() else {
            return Err(SymblError::Decode {
                what: "POST /v1/endpoint:connect (start)".into(),
                message: "the answer has no conversationId".into(),
            });
        };
        Ok(PstnSession { connection, call: SymblCall::for_conversation(conversation_id) })
    }

    /// Follows the session's real-time results.
    pub async fn subscribe(&self, session: &PstnSession) -> Result<RealtimeSubscription, SymblError> {
        self.client.subscribe(&session.connection.connection_id).await
    }

    /// Asks Symbl to leave the call.
    pub async fn stop_pstn(&self, session: &PstnSession) -> Result<(), SymblError> {
        self.client.stop_connection(&session.connection.connection_id).await.map(|_| ())
    }
}

/// The unseen messages that belong to the text just sent: those whose text is
/// part of it (Symbl may split one utterance into sentences); all of them when
/// none match (Symbl may rewrite punctuation or casing beyond recognition).
fn messages_of(sent: &str, unseen: Vec<ConversationMessage>) -> Vec<ConversationMessage> {
    let sent = normalize(sent);
    let matching: Vec<ConversationMessage> = unseen
        .iter()
        .filter(|m| {
            let t = normalize(&m.text);
            !t.is_empty() && sent.contains(&t)
        })
        .cloned()
        .collect();
    if matching.is_empty() {
        unseen
    } else {
        matching
    }
}

/// Which line a message of [`SymblEngine::score_texts`] belongs to: by its start
/// time inside the line's slot, else by its text.
fn line_of(message: &ConversationMessage, base: DateTime<Utc>, texts: &[String]) -> Option<usize> {
    if let Some(start) = message.start_time.as_deref().and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
        let offset = start.with_timezone(&Utc).signed_duration_since(base).num_milliseconds();
        let slot_ms = LINE_SLOT_SECS * 1000;
        if offset >= 0 && offset < slot_ms * texts.len() as i64 {
            return Some((offset / slot_ms) as usize);
        }
    }
    let text = normalize(&message.text);
    if text.is_empty() {
        return None;
    }
    texts.iter().position(|t| normalize(t).contains(&text))
}

/// The score of one utterance from its message(s): mean polarity, label from
/// Symbl's boundaries, trackers whose matches point at these messages.
fn score_messages(messages: &[&ConversationMessage], trackers: &[DetectedTracker]) -> Result<Score, SymblError> {
    let mut total = 0.0;
    for m in messages {
        let Some(sentiment) = &m.sentiment else {
            return Err(SymblError::MissingResult { what: format!("sentiment for message {}", m.id) });
        };
        total += clamp_polarity(sentiment.polarity.score);
    }
    let score = total / messages.len().max(1) as f64;
    let ids: HashSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    Ok(Score {
        score,
        label: Label::from_score(score),
        trackers: tracker_hits(trackers, &ids),
        engine: ENGINE_NAME.to_string(),
    })
}

fn clamp_polarity(score: f64) -> f64 {
    if score.is_finite() {
        score.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Tracker hits in the given messages, one per (tracker, phrase).
fn tracker_hits(trackers: &[DetectedTracker], message_ids: &HashSet<&str>) -> Vec<TrackerHit> {
    let mut hits: Vec<TrackerHit> = Vec::new();
    for t in trackers {
        for m in &t.matches {
            if m.message_refs.iter().any(|r| message_ids.contains(r.id.as_str())) {
                let hit = TrackerHit::new(t.name.clone(), m.value.clone());
                if !hits.contains(&hit) {
                    hits.push(hit);
                }
            }
        }
    }
    hits
}

fn summarize_tracker(t: &DetectedTracker) -> TrackerSummary {
    let mut phrases = Vec::new();
    let mut message_ids = Vec::new();
    let mut matches = 0;
    for m in &t.matches {
        if !phrases.contains(&m.value) {
            phrases.push(m.value.clone());
        }
        for r in &m.message_refs {
            matches += 1;
            if !message_ids.contains(&r.id) {
                message_ids.push(r.id.clone());
            }
        }
    }
    TrackerSummary { name: t.name.clone(), matches, phrases, message_ids }
}

/// Lower case, letters and digits only, single spaces.
fn normalize(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ").to_lowercase()
}

fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::api::{MessageRef, Polarity, Sentiment, TrackerMatch};
    use super::*;

    fn msg(id: &str, text: &str, score: Option<f64>) -> ConversationMessage {
        ConversationMessage {
            id: id.into(),
            text: text.into(),
            sentiment: score.map(|s| Sentiment { polarity: Polarity { score: s }, suggested: None }),
            ..ConversationMessage::default()
        }
    }

    fn tracker(name: &str, value: &str, ids: &[&str]) -> DetectedTracker {
        DetectedTracker {
            id: None,
            name: name.into(),
            matches: vec![TrackerMatch {
                kind: Some("vocabulary".into()),
                value: value.into(),
                message_refs: ids
                    .iter()
                    .map(|id| MessageRef { id: id.to_string(), text: None, offset: Some(0) })
                    .collect(),
                insight_refs: Vec::new(),
            }],
        }
    }

    #[test]
    fn a_score_takes_polarity_label_and_the_trackers_of_its_messages() {
        let trackers = vec![tracker("asks_for_human", "agent", &["2"]), tracker("churn_risk", "cancel", &["9"])];
        let m = msg("2", "Get me an agent.", Some(-0.8));
        let s = score_messages(&[&m], &trackers).unwrap();
        assert_eq!(s.score, -0.8);
        assert_eq!(s.label, Label::Negative);
        assert_eq!(s.engine, "symbl");
        assert_eq!(s.trackers, vec![TrackerHit::new("asks_for_human", "agent")]);
    }

    #[test]
    fn split_utterances_average_and_missing_sentiment_is_an_error() {
        let a = msg("1", "I love it.", Some(0.6));
        let b = msg("2", "It broke.", Some(-0.2));
        let s = score_messages(&[&a, &b], &[]).unwrap();
        assert!((s.score - 0.2).abs() < 1e-9);
        assert_eq!(s.label, Label::Neutral);
        let c = msg("3", "?", None);
        assert!(matches!(score_messages(&[&c], &[]), Err(SymblError::MissingResult { .. })));
        let d = msg("4", "x", Some(7.0));
        assert_eq!(score_messages(&[&d], &[]).unwrap().score, 1.0);
    }

    #[test]
    fn the_new_message_is_found_among_unseen_ones() {
        let unseen = vec![msg("1", "Earlier words.", Some(0.0)), msg("2", "I hate this!", Some(-0.7))];
        let mine = messages_of("i HATE this", unseen.clone());
        assert_eq!(mine.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec!["2"]);
        assert_eq!(messages_of("something else entirely", unseen).len(), 2);
    }

    #[test]
    fn lines_are_found_by_time_slot_then_text() {
        let base = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let texts = vec!["first line".to_string(), "second line. with two".to_string()];
        let mut m = msg("1", "anything", None);
        m.start_time = Some("2024-01-01T00:00:12.500Z".into());
        assert_eq!(line_of(&m, base, &texts), Some(1));
        m.start_time = Some("2030-01-01T00:00:00Z".into());
        m.text = "First line".into();
        assert_eq!(line_of(&m, base, &texts), Some(0));
        m.start_time = None;
        m.text = "with two".into();
        assert_eq!(line_of(&m, base, &texts), Some(1));
        m.text = "unrelated".into();
        assert_eq!(line_of(&m, base, &texts), None);
    }

    #[test]
    fn tracker_summaries_count_matches() {
        let mut t = tracker("asks_for_human", "agent", &["1", "2"]);
        t.matches.push(TrackerMatch {
            kind: None,
            value: "human".into(),
            message_refs: vec![MessageRef { id: "2".into(), text: None, offset: None }],
            insight_refs: Vec::new(),
        });
        let s = summarize_tracker(&t);
        assert_eq!(s.matches, 3);
        assert_eq!(s.phrases, vec!["agent", "human"]);
        assert_eq!(s.message_ids, vec!["1", "2"]);
    }

    #[test]
    fn call_handles_share_their_conversation() {
        let call = SymblCall::new();
        assert_eq!(call.conversation_id(), None);
        let clone = call.clone();
        call.set_conversation_id("42".into());
        assert_eq!(clone.conversation_id().as_deref(), Some("42"));
        assert_eq!(SymblCall::for_conversation("7").conversation_id().as_deref(), Some("7"));
    }
}
