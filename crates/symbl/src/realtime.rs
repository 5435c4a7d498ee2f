//! Real-time results of a telephony connection: the Subscribe API WebSocket
//! (`wss://…/session/subscribe/{connectionId}`) and the typed messages it pushes.
//!
//! Symbl pushes `transcript_response` (live text, `isFinal` once settled),
//! `message_response` (messages split at sentence boundaries),
//! `insight_response` and `topic_response`. Sentiment is not pushed: read it
//! from the messages endpoint (see [`super::SymblEngine::score_new_messages`]).

use std::time::Duration;

use futures_util::StreamExt;
use ivrx_http::error_chain::error_chain;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::api::{Payload, Speaker};
use super::client::SymblClient;
use super::error::SymblError;

/// `transcript_response`: live text, revised until `isFinal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptResponse {
    /// The text so far.
    #[serde(default)]
    pub payload: Option<Payload>,
    /// True once this text will not change.
    #[serde(default)]
    pub is_final: bool,
    /// The speaker, when known.
    #[serde(default)]
    pub from: Option<Speaker>,
}

impl TranscriptResponse {
    /// The transcribed text ("" when absent).
    pub fn text(&self) -> &str {
        self.payload.as_ref().map(|p| p.content.as_str()).unwrap_or("")
    }
}

/// One message of a `message_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealtimeMessage {
    /// Message id (the same id the messages endpoint reports).
    #[serde(default)]
    pub id: Option<String>,
    /// The speaker.
    #[serde(default)]
    pub from: Speaker,
    /// The text.
    #[serde(default)]
    pub payload: Option<Payload>,
    /// Timing, as Symbl sends it.
    #[serde(default)]
    pub duration: Option<Value>,
}

impl RealtimeMessage {
    /// The message text ("" when absent).
    pub fn text(&self) -> &str {
        self.payload.as_ref().map(|p| p.content.as_str()).unwrap_or("")
    }
}

/// `message_response`: settled messages, split at sentence boundaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageResponse {
    /// The messages.
    #[serde(default)]
    pub messages: Vec<RealtimeMessage>,
}

/// One insight (question, action item, follow-up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Insight {
    /// Insight id.
    #[serde(default)]
    pub id: Option<String>,
    /// `question`, `action_item`, `follow_up`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The text.
    #[serde(default)]
    pub payload: Option<Payload>,
    /// Who said it.
    #[serde(default)]
    pub from: Option<Speaker>,
    /// Confidence, 0..1.
    #[serde(default)]
    pub confidence: Option<f64>,
}

/// `insight_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightResponse {
    /// The insights.
    #[serde(default)]
    pub insights: Vec<Insight>,
}

/// A message a live topic refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMessageReference {
    /// Message id.
    #[serde(default)]
    pub id: Option<String>,
}

/// One live topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealtimeTopic {
    /// Topic id.
    #[serde(default)]
    pub id: Option<String>,
    /// The topic's words.
    #[serde(default)]
    pub phrases: Option<String>,
    /// Relevance, 0..1.
    #[serde(default)]
    pub score: Option<f64>,
    /// Messages that mention it.
    #[serde(default)]
    pub message_references: Vec<TopicMessageReference>,
}

/// `topic_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicResponse {
    /// The topics.
    #[serde(default)]
    pub topics: Vec<RealtimeTopic>,
}

/// One pushed message, by its `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum RealtimeEvent {
    /// `transcript_response`.
    Transcript(TranscriptResponse),
    /// `message_response`.
    Messages(MessageResponse),
    /// `insight_response`.
    Insights(InsightResponse),
    /// `topic_response`.
    Topics(TopicResponse),
    /// Any other type, kept as sent.
    Other {
        /// The `type` field ("" when absent).
        kind: String,
        /// The whole message.
        raw: Value,
    },
}

impl RealtimeEvent {
    /// Parses one WebSocket text message.
    pub fn parse(text: &str) -> Result<Self, SymblError> {
        let bad = |e: serde_json::Error| SymblError::Decode {
            what: "a real-time message".into(),
            message: format!("{e} in {}", super::error::body_excerpt(text.as_bytes())),
        };
        let raw: Value = serde_json::from_str(text).map_err(bad)?;
        let kind = raw.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        Ok(match kind.as_str() {
            "transcript_response" => RealtimeEvent::Transcript(serde_json::from_value(raw).map_err(bad)?),
            "message_response" => RealtimeEvent::Messages(serde_json::from_value(raw).map_err(bad)?),
            "insight_response" => RealtimeEvent::Insights(serde_json::from_value(raw).map_err(bad)?),
            "topic_response" => RealtimeEvent::Topics(serde_json::from_value(raw).map_err(bad)?),
            _ => RealtimeEvent::Other { kind, raw },
        })
    }
}

/// An open subscription to a connection's real-time results.
pub struct RealtimeSubscription {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    connection_id: String,
    finished: bool,
}

impl std::fmt::Debug for RealtimeSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeSubscription")
            .field("connection_id", &self.connection_id)
            .field("finished", &self.finished)
            .finish()
    }
}

impl RealtimeSubscription {
    /// The connection this subscription follows.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }

    /// The next event; `None` once Symbl closed the socket. A malformed
    /// message yields `Some(Err(Decode))` and the subscription goes on; a
    /// transport failure yields `Some(Err(WebSocket))` and then `None`.
    /// Waits as long as the call is quiet: wrap it in a timeout where needed.
    pub async fn next_event(&mut self) -> Option<Result<RealtimeEvent, SymblError>> {
        while !self.finished {
            let frame = match self.ws.next().await {
                None => {
                    self.finished = true;
                    return None;
                }
                Some(Ok(frame)) => frame,
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    self.finished = true;
                    return None;
                }
                Some(Err(e)) => {
                    self.finished = true;
                    return Some(Err(SymblError::WebSocket { message: error_chain(&e) }));
                }
            };
            match frame {
                Message::Text(text) => return Some(RealtimeEvent::parse(text.as_str())),
                Message::Binary(bytes) => return Some(RealtimeEvent::parse(&String::from_utf8_lossy(&bytes))),
                Message::Close(_) => {
                    self.finished = true;
                    return None;
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
        None
    }

    /// Closes the socket (bounded: gives up after two seconds).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}

impl SymblClient {
    /// Opens the real-time subscription of a telephony connection. The token is
    /// sent as `X-API-KEY` (as Symbl's SDKs do) and as a bearer token.
    pub async fn subscribe(&self, connection_id: &str) -> Result<RealtimeSubscription, SymblError> {
        let url = self.subscribe_url(connection_id);
        let cfg = self.config();
        let limit = cfg.connect_timeout + cfg.request_timeout;
        let mut reauthenticated = false;
        loop {
            let token = self.access_token().await?;
            let mut request = url
                .as_str()
                .into_client_request()
                .map_err(|e| SymblError::Config { message: format!("bad subscription URL {url}: {e}") })?;
            let mut key = HeaderValue::from_str(token.secret()).map_err(|_| SymblError::Decode {
                what: "the token exchange".into(),
                message: "unusable token".into(),
            })?;
            key.set_sensitive(true);
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.secret())).map_err(|_| {
                SymblError::Decode { what: "the token exchange".into(), message: "unusable token".into() }
            })?;
            bearer.set_sensitive(true);
            request.headers_mut().insert("x-api-key", key);
            request.headers_mut().insert("authorization", bearer);

            let connected = tokio::time::timeout(limit, tokio_tungstenite::connect_async(request)).await;
            let error = match connected {
                Err(_) => return Err(SymblError::Timeout { what: format!("subscribe {connection_id}"), after: limit }),
                Ok(Ok((ws, _))) => {
                    return Ok(RealtimeSubscription { ws, connection_id: connection_id.to_string(), finished: false })
                }
                Ok(Err(e)) => e,
            };
            match error {
                WsError::Http(resp) => match resp.status().as_u16() {
                    401 if !reauthenticated => {
                        reauthenticated = true;
                        self.forget_token(&token).await;
                    }
                    401 | 403 => {
                        return Err(SymblError::Unauthorized { origin: self.credentials().source().to_string() })
                    }
                    404 => return Err(SymblError::NotFound { what: format!("connection {connection_id}") }),
                    s => {
                        return Err(SymblError::WebSocket {
                            message: format!("subscription to {connection_id} refused with HTTP {s}"),
                        })
                    }
                },
                WsError::Io(e) => {
                    return Err(SymblError::Unreachable { base: self.base_url().to_string(), message: e.to_string() })
                }
                other => return Err(SymblError::WebSocket { message: error_chain(&other) }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_documented_type() {
        let m = RealtimeEvent::parse(
            r#"{"type":"message_response","messages":[{"from":{"name":"Caller","userId":"c@example.com"},
            "payload":{"content":"I need help.","contentType":"text/plain"},"id":"m1","extra":true}],"sequenceNumber":3}"#,
        )
        .unwrap();
        let RealtimeEvent::Messages(m) = m else { panic!("{m:?}") };
        assert_eq!(m.messages[0].text(), "I need help.");
        assert_eq!(m.messages[0].from.user_id.as_deref(), Some("c@example.com"));

        let t =
            RealtimeEvent::parse(r#"{"type":"transcript_response","payload":{"content":"I need"},"isFinal":false}"#)
                .unwrap();
        assert!(matches!(&t, RealtimeEvent::Transcript(t) if t.text() == "I need" && !t.is_final));

        let i = RealtimeEvent::parse(
            r#"{"type":"insight_response","insights":[{"id":"i1","type":"question","payload":{"content":"Can you help?"}}]}"#,
        )
        .unwrap();
        assert!(matches!(&i, RealtimeEvent::Insights(i) if i.insights[0].kind.as_deref() == Some("question")));

        let tp = RealtimeEvent::parse(
            r#"{"type":"topic_response","topics":[{"id":"t1","phrases":"billing","score":0.5,"messageReferences":[{"id":"m1","relation":"x"}]}]}"#,
        )
        .unwrap();
        assert!(matches!(&tp, RealtimeEvent::Topics(t) if t.topics[0].phrases.as_deref() == Some("billing")));
    }

    #[test]
    fn unknown_types_are_kept_and_garbage_is_an_error() {
        let e = RealtimeEvent::parse(r#"{"type":"intent_response","intent":{"intent":"interested"}}"#).unwrap();
        assert!(
            matches!(&e, RealtimeEvent::Other { kind, raw } if kind == "intent_response" && raw["intent"].is_object())
        );
        assert!(
            matches!(RealtimeEvent::parse(r#"{"no":"type"}"#).unwrap(), RealtimeEvent::Other { kind, .. } if kind.is_empty())
        );
        assert!(matches!(RealtimeEvent::parse("not json"), Err(SymblError::Decode { .. })));
        assert!(matches!(
            RealtimeEvent::parse(r#"{"type":"message_response","messages":"nope"}"#),
            Err(SymblError::Decode { .. })
        ));
    }
}
