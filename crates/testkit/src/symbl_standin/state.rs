//! The stand-in's data: tokens, conversations, jobs, telephony connections,
//! and the fault knobs. Plain data behind a mutex; no I/O.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use ivrx_symbl::{Speaker, TextMessage, TrackerSpec};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::analysis;

/// One request the stand-in answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// The status answered.
    pub status: u16,
}

/// Faults injected into answers.
#[derive(Debug, Clone, Default)]
pub(super) struct Faults {
    pub refuse_tokens: bool,
    pub fail_next: u32,
    pub fail_status: u16,
    pub retry_after: Option<String>,
    pub delay: Duration,
    pub fail_jobs: bool,
    pub refuse_connections: Option<u16>,
}

#[derive(Debug, Clone)]
pub(super) struct StoredMessage {
    pub id: String,
    pub text: String,
    pub from: Speaker,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub polarity: f64,
}

#[derive(Debug)]
pub(super) struct Conversation {
    pub created: DateTime<Utc>,
    pub messages: Vec<StoredMessage>,
    pub trackers: Vec<TrackerSpec>,
}

#[derive(Debug)]
pub(super) struct Job {
    pub conversation_id: String,
    pub polls_left: u32,
    pub pending: Vec<StoredMessage>,
    pub failed: bool,
    pub done: bool,
}

#[derive(Debug)]
pub(super) struct LiveConnection {
    pub conversation_id: String,
    pub active: bool,
    pub subscribers: Vec<UnboundedSender<String>>,
}

/// Everything the stand-in knows.
#[derive(Debug, Default)]
pub(super) struct State {
    next_id: u64,
    pub tokens: HashMap<String, Instant>,
    pub tokens_issued: u32,
    pub conversations: HashMap<String, Conversation>,
    pub jobs: HashMap<String, Job>,
    pub connections: HashMap<String, LiveConnection>,
    pub log: Vec<RecordedRequest>,
    pub faults: Faults,
    /// Telephony connections started: (connection id, number, dtmf).
    pub dialled: Vec<(String, String, Option<String>)>,
}

/// Why an operation failed, as an HTTP status and message.
pub(super) type Refusal = (u16, String);

impl State {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A Symbl-looking numeric id (conversations, messages).
    pub fn numeric_id(&mut self) -> String {
        format!("{}", 5_000_000_000_000_000u64 + self.next())
    }

    /// A uuid-looking id (jobs, connections), deterministic.
    pub fn uuid_id(&mut self) -> String {
        format!("00000000-0000-4000-8000-{:012x}", self.next())
    }

    /// Issues a token valid for `lifetime`.
    pub fn issue_token(&mut self, lifetime: Duration) -> String {
        self.tokens_issued += 1;
        let n = self.next();
        let token = format!("standin-token-{}-{n}", self.tokens_issued);
        self.tokens.insert(token.clone(), Instant::now() + lifetime);
        token
    }

    /// True when `token` was issued and has not expired.
    pub fn token_valid(&self, token: &str) -> bool {
        self.tokens.get(token).is_some_and(|exp| Instant::now() < *exp)
    }

    /// Turns posted messages into stored ones, one per sentence.
    fn split_into_messages(&mut self, messages: &[TextMessage], clock: DateTime<Utc>) -> Vec<StoredMessage> {
        let mut out = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let (start, end) = message_times(m, clock + chrono::Duration::seconds(i as i64 * 5));
            let parts = analysis::sentences(&m.payload.content);
            let n = parts.len().max(1) as i32;
            let step = (end - start) / n;
            for (k, text) in parts.into_iter().enumerate() {
                let k = k as i32;
                out.push(StoredMessage {
                    id: self.numeric_id(),
                    polarity: analysis::polarity(&text),
                    text,
                    from: m.from.clone(),
                    start: start + step * k,
                    end: start + step * (k + 1),
                });
            }
        }
        out
    }

    /// `POST /v1/process/text`.
    pub fn create_text_job(
        &mut self,
        messages: &[TextMessage],
        trackers: Vec<TrackerSpec>,
        polls: u32,
    ) -> (String, String) {
        let conversation_id = self.numeric_id();
        let created = Utc::now();
        let pending = self.split_into_messages(messages, created);
        self.conversations.insert(conversation_id.clone(), Conversation { created, messages: Vec::new(), trackers });
        let job_id = self.new_job(&conversation_id, pending, polls);
        (conversation_id, job_id)
    }

    /// `PUT /v1/process/text/{id}`.
    pub fn append_text_job(
        &mut self,
        conversation_id: &str,
        messages: &[TextMessage],
        trackers: Vec<TrackerSpec>,
        polls: u32,
    ) -> Result<String, Refusal> {
        let clock = {
            let Some(c) = self.conversations.get_mut(conversation_id) else {
                return Err((404, format!("conversation {conversation_id} not found")));
            };
            for t in trackers {
                if !c.trackers.iter().any(|k| k.name == t.name) {
                    c.trackers.push(t);
                }
            }
            c.messages.last().map(|m| m.end).unwrap_or(c.created) + chrono::Duration::seconds(1)
        };
        let pending = self.split_into_messages(messages, clock);
        Ok(self.new_job(conversation_id, pending, polls))
    }

    fn new_job(&mut self, conversation_id: &str, pending: Vec<StoredMessage>, polls: u32) -> String {
        let job_id = self.uuid_id();
        let failed = self.faults.fail_jobs;
        let job = Job { conversation_id: conversation_id.to_string(), polls_left: polls, pending, failed, done: false };
        self.jobs.insert(job_id.clone(), job);
        job_id
    }

    /// `GET /v1/job/{id}`: `in_progress` for the configured number of polls,
    /// then `completed` (the messages become visible) or `failed`.
    pub fn poll_job(&mut self, job_id: &str) -> Result<&'static str, Refusal> {
        let Some(job) = self.jobs.get_mut(job_id) else { return Err((404, format!("job {job_id} not found"))) };
        if job.polls_left > 0 {
            job.polls_left -= 1;
            return Ok("in_progress");
        }
        if job.failed {
            return Ok("failed");
        }
        if !job.done {
            job.done = true;
            let pending = std::mem::take(&mut job.pending);
            let conversation_id = job.conversation_id.clone();
            if let Some(c) = self.conversations.get_mut(&conversation_id) {
                c.messages.extend(pending);
            }
        }
        Ok("completed")
    }

    fn conversation(&self, id: &str) -> Result<&Conversation, Refusal> {
        self.conversations.get(id).ok_or_else(|| (404, format!("conversation {id} not found")))
    }

    /// `GET /v1/conversations/{id}/messages`.
    pub fn messages_json(&self, id: &str, sentiment: bool) -> Result<Value, Refusal> {
        let c = self.conversation(id)?;
        let messages: Vec<Value> = c
            .messages
            .iter()
            .map(|m| {
                let mut v = json!({
                    "id": m.id,
                    "text": m.text,
                    "from": m.from,
                    "startTime": ts(m.start),
                    "endTime": ts(m.end),
                    "timeOffset": secs_between(c.created, m.start),
                    "duration": secs_between(m.start, m.end),
                    "conversationId": id,
                });
                if sentiment {
                    v["sentiment"] = sentiment_json(m.polarity);
                }
                v
            })
            .collect();
        Ok(json!({ "messages": messages }))
    }

    /// `GET /v1/conversations/{id}/topics`.
    pub fn topics_json(&self, id: &str, sentiment: bool) -> Result<Value, Refusal> {
        let c = self.conversation(id)?;
        let texts: Vec<&str> = c.messages.iter().map(|m| m.text.as_str()).collect();
        let topics: Vec<Value> = analysis::topics(&texts)
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let ids: Vec<&str> = t.messages.iter().map(|&k| c.messages[k].id.as_str()).collect();
                let mut v = json!({
                    "id": format!("{}{:03}", id, i + 1),
                    "text": t.text,
                    "type": "topic",
                    "score": t.score,
                    "messageIds": ids,
                    "parentRefs": [],
                });
                if sentiment {
                    let mean = t.messages.iter().map(|&k| c.messages[k].polarity).sum::<f64>()
                        / t.messages.len().max(1) as f64;
                    v["sentiment"] = sentiment_json((mean * 1000.0).round() / 1000.0);
                }
                v
            })
            .collect();
        Ok(json!({ "topics": topics }))
    }

    /// `GET /v1/conversations/{id}/trackers-detected`.
    pub fn trackers_json(&self, id: &str) -> Result<Value, Refusal> {
        let c = self.conversation(id)?;
        let mut out = Vec::new();
        for (i, t) in c.trackers.iter().enumerate() {
            let mut matches = Vec::new();
            for phrase in &t.vocabulary {
                let refs: Vec<Value> = c
                    .messages
                    .iter()
                    .filter_map(|m| {
                        analysis::find_phrase(&m.text, phrase)
                            .map(|offset| json!({"id": m.id, "text": m.text, "offset": offset}))
                    })
                    .collect();
                if !refs.is_empty() {
                    matches
                        .push(json!({"type": "vocabulary", "value": phrase, "messageRefs": refs, "insightRefs": []}));
                }
            }
            if !matches.is_empty() {
                out.push(json!({"id": format!("{}{:03}", id, 900 + i), "name": t.name, "matches": matches}));
            }
        }
        Ok(Value::Array(out))
    }

    /// `endpoint:connect` start: a connection and its conversation.
    pub fn start_connection(&mut self) -> (String, String) {
        let connection_id = self.uuid_id();
        let conversation_id = self.numeric_id();
        self.conversations.insert(
            conversation_id.clone(),
            Conversation { created: Utc::now(), messages: Vec::new(), trackers: Vec::new() },
        );
        self.connections.insert(
            connection_id.clone(),
            LiveConnection { conversation_id: conversation_id.clone(), active: true, subscribers: Vec::new() },
        );
        (connection_id, conversation_id)
    }

    /// `endpoint:connect` stop: ends the connection and closes its subscribers.
    pub fn stop_connection(&mut self, connection_id: &str) -> Result<String, Refusal> {
        match self.connections.get_mut(connection_id) {
            Some(c) if c.active => {
                c.active = false;
                c.subscribers.clear();
                Ok(c.conversation_id.clone())
            }
            _ => Err((404, format!("connection {connection_id} not found or already stopped"))),
        }
    }

    /// Stops every active connection (the stand-in goes down); returns their ids.
    pub fn stop_all_connections(&mut self) -> Vec<String> {
        let mut stopped = Vec::new();
        for (id, c) in self.connections.iter_mut().filter(|(_, c)| c.active) {
            c.active = false;
            c.subscribers.clear();
            stopped.push(id.clone());
        }
        stopped
    }

    /// Adds a subscriber to an active connection.
    pub fn subscribe(&mut self, connection_id: &str, tx: UnboundedSender<String>) -> Result<(), Refusal> {
        match self.connections.get_mut(connection_id) {
            Some(c) if c.active => {
                c.subscribers.push(tx);
                Ok(())
            }
            _ => Err((404, format!("connection {connection_id} not found"))),
        }
    }

    /// Someone spoke on a connection: store the sentences as messages (visible
    /// at once) and push transcript, message, insight and topic responses.
    pub fn speak(
        &mut self,
        connection_id: &str,
        speaker: &str,
        text: &str,
        when: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Option<Vec<String>> {
        let conversation_id = match self.connections.get(connection_id) {
            Some(c) if c.active => c.conversation_id.clone(),
            _ => return None,
        };
        let clock = {
            let c = self.conversations.get(&conversation_id)?;
            c.messages.last().map(|m| m.end).unwrap_or(c.created)
        };
        let from =
            Speaker { name: Some(speaker.to_string()), user_id: Some(format!("{}@standin.invalid", slug(speaker))) };
        let mut message = TextMessage::new(speaker, text);
        message.from = from.clone();
        if let Some((start, end)) = when {
            message = message.with_duration(ts(start), ts(end));
        }
        let stored = self.split_into_messages(std::slice::from_ref(&message), clock);
        let ids: Vec<String> = stored.iter().map(|m| m.id.clone()).collect();

        let words: Vec<&str> = text.split_whitespace().collect();
        let interim = words[..words.len().div_ceil(2)].join(" ");
        let mut frames = vec![
            json!({"type": "transcript_response", "payload": {"content": interim, "contentType": "text/plain"},
                   "isFinal": false, "from": from}),
            json!({"type": "transcript_response", "payload": {"content": text, "contentType": "text/plain"},
                   "isFinal": true, "from": from}),
            json!({"type": "message_response", "messages": stored.iter().map(|m| json!({
                "id": m.id, "from": m.from,
                "payload": {"content": m.text, "contentType": "text/plain"},
                "duration": {"startTime": ts(m.start), "endTime": ts(m.end)},
            })).collect::<Vec<_>>()}),
        ];
        let questions: Vec<Value> = stored
            .iter()
            .filter(|m| m.text.ends_with('?'))
            .map(|m| {
                json!({"id": format!("{}-q", m.id), "type": "question", "confidence": 0.9,
                "payload": {"content": m.text, "contentType": "text/plain"}, "from": m.from,
                "messageReference": {"id": m.id}})
            })
            .collect();
        if !questions.is_empty() {
            frames.push(json!({"type": "insight_response", "insights": questions}));
        }
        let texts: Vec<&str> = stored.iter().map(|m| m.text.as_str()).collect();
        let topics: Vec<Value> = analysis::topics(&texts)
            .into_iter()
            .map(|t| {
                json!({"id": format!("topic-{}", t.text), "phrases": t.text, "score": t.score, "type": "topic",
                "messageReferences": t.messages.iter().map(|&k| json!({"id": stored[k].id})).collect::<Vec<_>>()})
            })
            .collect();
        if !topics.is_empty() {
            frames.push(json!({"type": "topic_response", "topics": topics}));
        }

        if let Some(c) = self.conversations.get_mut(&conversation_id) {
            c.messages.extend(stored);
        }
        if let Some(conn) = self.connections.get_mut(connection_id) {
            let frames: Vec<String> = frames.iter().map(Value::to_string).collect();
            conn.subscribers.retain(|tx| frames.iter().all(|f| tx.send(f.clone()).is_ok()));
        }
        Some(ids)
    }
}

fn message_times(m: &TextMessage, fallback: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc));
    if let Some(d) = &m.duration {
        if let (Some(start), Some(end)) = (parse(&d.start_time), parse(&d.end_time)) {
            if end > start {
                return (start, end);
            }
        }
    }
    let words = m.payload.content.split_whitespace().count().max(1) as i64;
    (fallback, fallback + chrono::Duration::milliseconds(words * 400))
}

fn sentiment_json(polarity: f64) -> Value {
    json!({"polarity": {"score": polarity}, "suggested": analysis::suggested(polarity)})
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn secs_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    ((b - a).num_milliseconds() as f64 / 1000.0 * 100.0).round() / 100.0
}

fn slug(name: &str) -> String {
    let s: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
    if s.is_empty() {
        "speaker".into()
    } else {
        s
    }
}
