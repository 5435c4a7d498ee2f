//! `--import FILE`: conversations recorded elsewhere, scored by the engine,
//! run through the escalation policy and stored like live calls (direction
//! `import`).
//!
//! Accepted input, detected per file:
//! - JSON lines, one conversation per line:
//!   `{"conversation_id": "c1", "started_at": "2026-03-01T09:00:00Z" (optional),
//!     "utterances": [{"offset": 4.2, "speaker": "caller", "text": "..."}]}`
//!   with `offset` in seconds from the call start and `speaker` one of
//!   `caller`, `agent`, `ivr`;
//! - a Symbl messages export, `{"messages": [{"text", "from": {"name"},
//!   "startTime", "timeOffset", "conversationId", ...}]}`: one conversation
//!   per file (pretty-printed or not), or JSON lines of such objects. The
//!   offset is `timeOffset` (seconds), else `startTime` minus the first
//!   message's. Speakers named like a role (`caller`/`customer`,
//!   `agent`/`representative`/`support`, `ivr`/`bot`) take that role; among
//!   other names, the first one heard is the caller and the rest are agents.
//!   The id is `conversationId`, else `<file name>-<n>`.
//!
//! The whole file is validated before anything is written, and ids already
//! in the database are refused, so a bad file imports nothing. The decision
//! the policy makes is recorded (source `policy`); no transfer is placed,
//! so imported calls are never `transferred` and have no `transfer_status`.

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::record::CallRecorder;
use super::AnalyzeError;
use crate::intel::Scorer;
use crate::policy::PolicyConfig;
use crate::session::Speaker;
use crate::store::{Store, Transition};

/// Longest accepted utterance text, characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Most utterances in one conversation.
pub const MAX_UTTERANCES: usize = 20_000;
/// Most problems listed in one error.
const MAX_PROBLEMS: usize = 20;

/// One problem in an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// An import that was refused (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file has problems.
    #[error("{path}: nothing was imported:{}\n{FORMATS}", list(problems))]
    Invalid {
        /// The file.
        path: String,
        /// The problems, by line (at most 20).
        problems: Vec<Problem>,
    },
    /// Conversations with these ids are already stored.
    #[error("{path}: nothing was imported: already in the database: {}", ids.join(", "))]
    Exists {
        /// The file.
        path: String,
        /// The ids (at most 20).
        ids: Vec<String>,
    },
}

/// What an import file may hold, for error messages.
pub const FORMATS: &str = "\
expected JSON lines, one conversation per line:
  {\"conversation_id\": \"c1\", \"started_at\": \"2026-03-01T09:00:00Z\" (optional), \"utterances\": [{\"offset\": 4.2, \"speaker\": \"caller\", \"text\": \"...\"}]}
or a Symbl messages export:
  {\"messages\": [{\"text\": \"...\", \"from\": {\"name\": \"...\"}, \"timeOffset\": 4.2 (or \"startTime\"), \"conversationId\": \"...\"}]}";

/// serde_json's message without its position (which counts within one line,
/// or the whole file, and would contradict the line given), and the column.
fn json_error(e: &serde_json::Error, whole_file: bool) -> String {
    let message = e.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    if whole_file {
        format!("not JSON: {message} (column {})", e.column())
    } else {
        format!("not a JSON line: {message} (column {})", e.column())
    }
}

/// Reads a typed value, naming the field that does not fit.
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  line {}: {}", p.line, p.message)).collect()
}

/// One utterance to import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedUtterance {
    /// Milliseconds from the call start.
    pub offset_ms: u64,
    /// Who said it.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
}

/// One conversation to import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedCall {
    /// Conversation id.
    pub id: String,
    /// When the call started, if the file says.
    pub started_at: Option<DateTime<Utc>>,
    /// Utterances in time order.
    pub utterances: Vec<ImportedUtterance>,
    /// Where it starts in the file.
    pub line: usize,
}

#[derive(Deserialize)]
struct LineCall {
    conversation_id: String,
    #[serde(default)]
    started_at: Option<String>,
    utterances: Vec<LineUtterance>,
}

#[derive(Deserialize)]
struct LineUtterance {
    offset: f64,
    speaker: String,
    text: String,
}

#[derive(Deserialize)]
struct SymblExport {
    messages: Vec<SymblMessage>,
}

#[derive(Deserialize)]
struct SymblMessage {
    text: String,
    #[serde(default)]
    from: Option<SymblFrom>,
    #[serde(rename = "startTime", default)]
    start_time: Option<String>,
    #[serde(rename = "timeOffset", default)]
    time_offset: Option<f64>,
    #[serde(rename = "conversationId", default)]
    conversation_id: Option<String>,
}

#[derive(Deserialize)]
struct SymblFrom {
    #[serde(default)]
    name: Option<String>,
}

/// Parses and validates import text. `name` (the file's stem) names Symbl
/// conversations that carry no id.
pub fn parse(text: &str, name: &str) -> Result<Vec<ImportedCall>, Vec<Problem>> {
    let problem = |line: usize, message: String| vec![Problem { line, message }];
    if text.trim().is_empty() {
        return Err(problem(1, "the file is empty".into()));
    }
    let mut values: Vec<(usize, Value)> = Vec::new();
    let mut problems = Vec::new();
    match serde_json::from_str::<Value>(text) {
        Ok(v) => values.push((first_line(text), v)),
        Err(whole) => {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if serde_json::from_str::<Value>(first).is_err() {
                // One (pretty-printed) document with a syntax error.
                return Err(problem(whole.line().max(1), json_error(&whole, true)));
            }
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => values.push((i + 1, v)),
                    Err(e) => problems.push(Problem { line: i + 1, message: json_error(&e, false) }),
                }
            }
        }
    }
    let mut calls = Vec::new();
    let mut ids = HashSet::new();
    for (n, (line, value)) in values.into_iter().enumerate() {
        match call_from_value(value, line, name, n + 1) {
            Ok(call) => {
                if !ids.insert(call.id.clone()) {
                    problems.push(Problem { line, message: format!("conversation {:?} appears twice", call.id) });
                } else {
                    calls.push(call);
                }
            }
            Err(message) => problems.push(Problem { line, message }),
        }
    }
    if problems.is_empty() {
        Ok(calls)
    } else {
        problems.truncate(MAX_PROBLEMS);
        Err(problems)
    }
}

fn first_line(text: &str) -> usize {
    text.lines().position(|l| !l.trim().is_empty()).map_or(1, |i| i + 1)
}

fn call_from_value(value: Value, line: usize, name: &str, n: usize) -> Result<ImportedCall, String> {
    let Value::Object(obj) = &value else {
        return Err("expected a JSON object".into());
    };
    if obj.contains_key("messages") {
        let export: SymblExport = typed(value).map_err(|e| format!("Symbl export: {e}"))?;
        return symbl_call(export, line, name, n);
    }
    if obj.contains_key("conversation_id") || obj.contains_key("utterances") {
        let c: LineCall = typed(value)?;
        return line_call(c, line);
    }
    Err(r#"neither a conversation {"conversation_id", "utterances": [...]} nor a Symbl export {"messages": [...]}"#
        .into())
}

fn check_id(id: &str) -> Result<String, String> {
    let id = id.trim();
    if id.is_empty() {
        return Err("conversation_id is empty".into());
    }
    if id.chars().count() > 200 || id.chars().any(char::is_control) {
        return Err(format!("conversation_id {id:?} is too long or has control characters"));
    }
    Ok(id.to_string())
}

fn check_offset(seconds: f64, what: &str) -> Result<u64, String> {
    if !seconds.is_finite() || !(0.0..=10_000_000.0).contains(&seconds) {
        return Err(format!("{what}: offset {seconds} is not a number of seconds between 0 and 10000000"));
    }
    Ok((seconds * 1000.0).round() as u64)
}

fn check_text(text: &str, what: &str) -> Result<String, String> {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() {
        return Err(format!("{what}: text is empty"));
    }
    if t.chars().count() > MAX_TEXT_CHARS {
        return Err(format!("{what}: text is longer than {MAX_TEXT_CHARS} characters"));
    }
    Ok(t)
}

fn finish(
    id: String,
    started_at: Option<DateTime<Utc>>,
    mut utterances: Vec<ImportedUtterance>,
    line: usize,
) -> Result<ImportedCall, String> {
    if utterances.is_empty() {
        return Err(format!("conversation {id:?} has no utterances"));
    }
    if utterances.len() > MAX_UTTERANCES {
        return Err(format!("conversation {id:?} has more than {MAX_UTTERANCES} utterances"));
    }
    utterances.sort_by_key(|u| u.offset_ms);
    Ok(ImportedCall { id, started_at, utterances, line })
}

fn parse_started(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("started_at {s:?} is not RFC 3339: {e}"))
}

fn line_call(c: LineCall, line: usize) -> Result<ImportedCall, String> {
    let id = check_id(&c.conversation_id)?;
    let started_at = c.started_at.as_deref().map(parse_started).transpose()?;
    let mut utterances = Vec::with_capacity(c.utterances.len());
    for (i, u) in c.utterances.into_iter().enumerate() {
        let what = format!("utterance {}", i + 1);
        let speaker = match u.speaker.trim().to_ascii_lowercase().as_str() {
            "caller" => Speaker::Caller,
            "agent" => Speaker::Agent,
            "ivr" => Speaker::Ivr,
            other => return Err(format!("{what}: speaker {other:?} is not caller, agent or ivr")),
        };
        utterances.push(ImportedUtterance {
            offset_ms: check_offset(u.offset, &what)?,
            speaker,
            text: check_text(&u.text, &what)?,
        });
    }
    finish(id, started_at, utterances, line)
}

/// The role a Symbl speaker name implies, if any.
fn role_of(name: &str) -> Option<Speaker> {
    let n = name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.split(|c: char| !c.is_alphanumeric()).any(|t| t == *w));
    if has(&["caller", "customer", "client"]) {
        Some(Speaker::Caller)
    } else if has(&["agent", "representative", "rep", "support", "operator"]) {
        Some(Speaker::Agent)
    } else if has(&["ivr", "bot"]) {
        Some(Speaker::Ivr)
    } else {
        None
    }
}

fn symbl_call(export: SymblExport, line: usize, name: &str, n: usize) -> Result<ImportedCall, String> {
    let id = export.messages.iter().find_map(|m| m.conversation_id.clone()).unwrap_or_else(|| {
        if n == 1 {
            name.to_string()
        } else {
            format!("{name}-{n}")
        }
    });
    let id = check_id(&id)?;
    let mut starts = Vec::with_capacity(export.messages.len());
    for (i, m) in export.messages.iter().enumerate() {
        let start =
            m.start_time.as_deref().map(parse_started).transpose().map_err(|e| format!("message {}: {e}", i + 1))?;
        starts.push(start);
    }
    let first_start = starts.iter().flatten().min().copied();
    let started_at = export
        .messages
        .iter()
        .zip(&starts)
        .find_map(|(m, s)| s.zip(m.time_offset))
        .map(|(s, off)| s - chrono::Duration::milliseconds((off.max(0.0) * 1000.0) as i64))
        .or(first_start);
    let mut caller_name: Option<String> = None;
    let mut utterances = Vec::with_capacity(export.messages.len());
    for (i, (m, start)) in export.messages.iter().zip(&starts).enumerate() {
        let what = format!("message {}", i + 1);
        let seconds = match (m.time_offset, start, first_start) {
            (Some(off), _, _) => off,
            (None, Some(s), Some(f)) => (*s - f).num_milliseconds() as f64 / 1000.0,
            _ => return Err(format!("{what}: neither timeOffset nor startTime")),
        };
        let who = m.from.as_ref().and_then(|f| f.name.clone()).unwrap_or_else(|| "unknown".into());
        let speaker = role_of(&who).unwrap_or_else(|| match &caller_name {
            Some(c) if *c == who => Speaker::Caller,
            Some(_) => Speaker::Agent,
            None => {
                caller_name = Some(who.clone());
                Speaker::Caller
            }
        });
        utterances.push(ImportedUtterance {
            offset_ms: check_offset(seconds, &what)?,
            speaker,
            text: check_text(&m.text, &what)?,
        });
    }
    finish(id, started_at, utterances, line)
}

/// Reads and validates an import file.
pub fn read(path: &Path) -> Result<Vec<ImportedCall>, ImportError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ImportError::Io { path: path.display().to_string(), source })?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "import".into());
    parse(&text, &name).map_err(|problems| ImportError::Invalid { path: path.display().to_string(), problems })
}

/// What an import stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// Conversations.
    pub calls: u64,
    /// Utterances.
    pub utterances: u64,
    /// Conversations the policy decided to transfer.
    pub decided: u64,
}

/// Scores, decides and stores validated conversations. Refuses (writing
/// nothing) when any id is already stored. Calls without a start time start
/// at `now`.
pub async fn store_calls(
    store: &(impl Store + ?Sized),
    calls: &[ImportedCall],
    source: &str,
    scorer: &dyn Scorer,
    policy: &PolicyConfig,
    now: DateTime<Utc>,
    tick: &mut dyn FnMut(),
) -> Result<Imported, AnalyzeError> {
    let ids: Vec<String> = calls.iter().map(|c| c.id.clone()).collect();
    let mut existing = store.existing(&ids).await?;
    if !existing.is_empty() {
        existing.truncate(MAX_PROBLEMS);
        return Err(ImportError::Exists { path: source.to_string(), ids: existing }.into());
    }
    let mut done = Imported::default();
    for (i, call) in calls.iter().enumerate() {
        let mut rec =
            CallRecorder::start(&call.id, call.started_at.unwrap_or(now), "import", None, None, scorer, policy);
        for u in &call.utterances {
            rec.utterance(u.offset_ms, u.speaker, &u.text, 0);
        }
        done.calls += 1;
        done.utterances += call.utterances.len() as u64;
        done.decided += u64::from(rec.decision().is_some());
        let end = call.utterances.last().map_or(0, |u| u.offset_ms);
        let events = rec.end(end, "imported");
        drop(store.commit(Transition::events(call.id.clone(), events)));
        if i % 1000 == 999 {
            store.flush().await?;
        }
        tick();
    }
    store.flush().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> Vec<Problem> {
        parse(text, "f").unwrap_err()
    }

    #[test]
    fn json_lines_are_parsed_in_time_order() {
        let text = concat!(
            r#"{"conversation_id": "a", "started_at": "2026-03-01T09:00:00Z", "utterances": [{"offset": 9.5, "speaker": "Caller", "text": "i want a  human"}, {"offset": 1, "speaker": "ivr", "text": "hello"}]}"#,
            "\n\n",
            r#"{"conversation_id": "b", "utterances": [{"offset": 0, "speaker": "agent", "text": "hi"}], "extra": true}"#,
            "\n"
        );
        let calls = parse(text, "f").unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].utterances[0].speaker, Speaker::Ivr);
        assert_eq!(calls[0].utterances[1].offset_ms, 9500);
        assert_eq!(calls[0].utterances[1].text, "i want a human");
        assert_eq!(calls[0].started_at.unwrap().to_rfc3339(), "2026-03-01T09:00:00+00:00");
        assert_eq!((calls[1].line, calls[1].started_at), (3, None));
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers() {
        let text = concat!(
            r#"{"conversation_id": "a", "utterances": [{"offset": 1, "speaker": "caller", "text": "ok"}]}"#,
            "\n",
            r#"{"conversation_id": "b", "utterances": [{"offset": -1, "speaker": "caller", "text": "ok"}]}"#,
            "\n",
            "{not json\n",
            r#"{"conversation_id": "a", "utterances": [{"offset": 1, "speaker": "caller", "text": "ok"}]}"#,
            "\n",
            r#"{"conversation_id": "c", "utterances": [{"offset": 1, "speaker": "boss", "text": "ok"}]}"#,
            "\n",
            r#"{"conversation_id": "d", "utterances": []}"#,
            "\n",
            r#"{"conversation_id": "e", "utterances": [{"offset": 1, "speaker": "caller", "text": "  "}]}"#,
            "\n",
            r#"{"id": "f"}"#,
            "\n",
            r#"{"conversation_id": "g", "utterances": [{"offset": "1", "speaker": "caller", "text": "x"}]}"#,
        );
        let p = err(text);
        let lines: Vec<usize> = p.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![3, 2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(p[0].message, "not a JSON line: key must be a string (column 2)");
        assert!(p[1].message.contains("utterance 1") && p[1].message.contains("offset -1"));
        assert!(p[2].message.contains("appears twice"));
        assert!(p[3].message.contains("\"boss\""));
        assert!(p[4].message.contains("no utterances"));
        assert!(p[5].message.contains("text is empty"));
        assert!(p[6].message.contains("conversation_id"));
        assert!(p[7].message.starts_with("utterances[0].offset: invalid type"), "{}", p[7].message);
        let e = ImportError::Invalid { path: "in.jsonl".into(), problems: p }.to_string();
        assert!(e.starts_with("in.jsonl: nothing was imported:\n  line 3: not a JSON line"), "{e}");
        assert!(e.ends_with(FORMATS) && FORMATS.contains("JSON lines") && FORMATS.contains("Symbl"), "{e}");
    }

    #[test]
    fn a_symbl_export_is_one_conversation() {
        let text = r#"{
  "messages": [
    {"id": "1", "text": "Thanks for calling, this is Dana.", "from": {"name": "Dana Support"},
     "startTime": "2020-07-10T11:16:21.024Z", "timeOffset": 5.9, "conversationId": "sym-1"},
    {"id": "2", "text": "My internet is down again.", "from": {"name": "Roger"},
     "startTime": "2020-07-10T11:16:27.024Z", "timeOffset": 11.9},
    {"id": "3", "text": "I see.", "from": {"name": "Pat"}, "startTime": "2020-07-10T11:16:40.024Z"}
  ]
}"#;
        let calls = parse(text, "export").unwrap();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!(c.id, "sym-1");
        assert_eq!(c.started_at.unwrap().to_rfc3339(), "2020-07-10T11:16:15.124+00:00");
        let who: Vec<Speaker> = c.utterances.iter().map(|u| u.speaker).collect();
        assert_eq!(who, vec![Speaker::Agent, Speaker::Caller, Speaker::Agent]);
        assert_eq!(c.utterances[1].offset_ms, 11_900);
        assert_eq!(c.utterances[2].offset_ms, 19_000, "startTime minus the first startTime");
    }

    #[test]
    fn symbl_json_lines_and_their_errors() {
        let ok = r#"{"messages": [{"text": "hello", "from": {"name": "A"}, "timeOffset": 0}]}"#;
        let text = format!("{ok}\n{ok}\n");
        let calls = parse(&text, "calls").unwrap();
        assert_eq!(calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["calls", "calls-2"]);
        let bad = r#"{"messages": [{"text": "hello", "from": {"name": "A"}}]}"#;
        let p = err(&format!("{ok}\n{bad}\n"));
        assert_eq!(p[0].line, 2);
        assert!(p[0].message.contains("message 1") && p[0].message.contains("timeOffset"));
        // A pretty-printed export with a syntax error points at the line of the error.
        let p = err("{\n  \"messages\": [\n    {\"text\": \"hi\",}\n  ]\n}\n");
        assert_eq!(p[0].line, 3, "{:?}", p);
        assert_eq!(err("  \n")[0].message, "the file is empty");
        assert!(err("[1, 2]")[0].message.contains("expected"));
    }
}
