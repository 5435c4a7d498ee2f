//! A [`Dialer`] that places Symbl's phone calls into a sandbox carrier, through
//! the sandbox's control API (so it works with an embedded sandbox in another
//! process as well as one in this process):
//!
//! 1. `POST /sandbox/v1/calls` with `live: true`: an inbound call from
//!    [`SYMBL_CALLER_ID`] to the number Symbl was given (`+` added back: Symbl
//!    takes digits only), whose script presses the DTMF (`,` = `pause 1`);
//! 2. `GET /sandbox/v1/calls/{id}/heard`: every line the call hears (in a
//!    conference: the other participants) goes to the connection's
//!    [`SpeechSink`](super::SpeechSink), labelled with the speaker's number;
//! 3. on stop, `POST /sandbox/v1/calls/{id}/steps` with `hangup`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ivrx_sandbox::{ControlClient, PlaceRequest};

use super::{Dialer, PstnDial};

/// The number Symbl's calls come from in the sandbox.
pub const SYMBL_CALLER_ID: &str = "+15555550142";

/// Places Symbl's calls into a sandbox carrier (see the module docs).
#[derive(Clone)]
pub struct SandboxDialer {
    inner: Arc<Inner>,
}

struct Inner {
    sandbox: ControlClient,
    from: String,
    /// connection id → the sandbox call placed for it.
    calls: Mutex<HashMap<String, String>>,
    /// Connections stopped before their call was placed.
    stopped: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for SandboxDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxDialer").field("sandbox", &self.inner.sandbox).finish_non_exhaustive()
    }
}

impl SandboxDialer {
    /// Dials into the sandbox at `base_url` (`http://127.0.0.1:PORT`) with its API key.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        let sandbox = ControlClient::new(&base_url.into(), &api_key.into()).expect("an HTTP client");
        Self {
            inner: Arc::new(Inner {
                sandbox,
                from: SYMBL_CALLER_ID.into(),
                calls: Mutex::new(HashMap::new()),
                stopped: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The sandbox call placed for a connection, once placed.
    pub fn call_of(&self, connection_id: &str) -> Option<String> {
        self.inner.calls.lock().unwrap_or_else(|p| p.into_inner()).get(connection_id).cloned()
    }
}

impl Dialer for SandboxDialer {
    fn dial(&self, dial: PstnDial) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let connection_id = dial.connection_id.clone();
            if let Err(e) = inner.run(dial).await {
                tracing::warn!(connection = %connection_id, error = %e, "Symbl stand-in: the sandbox call failed");
            }
        });
    }

    fn hang_up(&self, connection_id: &str) {
        let inner = self.inner.clone();
        let call = inner.calls.lock().unwrap_or_else(|p| p.into_inner()).get(connection_id).cloned();
        match call {
            Some(ccid) => {
                tokio::spawn(async move { inner.hang_up(&ccid).await });
            }
            None => {
                inner.stopped.lock().unwrap_or_else(|p| p.into_inner()).insert(connection_id.to_string());
            }
        }
    }
}

/// The caller script for Symbl's DTMF: runs of keys are pressed, each `,`
/// waits a second, anything else is dropped.
pub fn dtmf_script(dtmf: Option<&str>) -> String {
    let mut script = String::new();
    let mut keys = String::new();
    let flush = |keys: &mut String, script: &mut String| {
        if !keys.is_empty() {
            for chunk in keys.as_bytes().chunks(64) {
                script.push_str(&format!("press {}\n", String::from_utf8_lossy(chunk)));
            }
            keys.clear();
        }
    };
    for c in dtmf.unwrap_or_default().chars() {
        match c {
            ',' => {
                flush(&mut keys, &mut script);
                script.push_str("pause 1\n");
            }
            c if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') => keys.push(c),
            _ => {}
        }
    }
    flush(&mut keys, &mut script);
    script
}

impl Inner {
    async fn run(&self, dial: PstnDial) -> Result<(), String> {
        let to = if dial.phone_number.starts_with('+') {
            dial.phone_number.clone()
        } else {
            format!("+{}", dial.phone_number)
        };
        let call = PlaceRequest {
            from: Some(self.from.clone()),
            to: Some(to),
            script: dtmf_script(dial.dtmf.as_deref()),
            live: true,
            caller_id_name: None,
        };
        let ccid = self.sandbox.place(&call).await.map_err(|e| format!("placing the call: {e}"))?;
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).insert(dial.connection_id.clone(), ccid.clone());
        if self.stopped.lock().unwrap_or_else(|p| p.into_inner()).remove(&dial.connection_id) {
            self.hang_up(&ccid).await;
            return Ok(());
        }
        let mut heard = self.sandbox.heard(&ccid).await.map_err(|e| format!("listening: {e}"))?;
        while let Some(h) = heard.next().await.map_err(|e| e.to_string())? {
            let time = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&chrono::Utc));
            let when = time(&h.started_at).zip(time(&h.ended_at));
            if !dial.speech.heard_at(&h.speaker_number, &h.text, when) {
                // The connection stopped: Symbl leaves the call.
                self.hang_up(&ccid).await;
                return Ok(());
            }
        }
        Ok(())
    }

    async fn hang_up(&self, ccid: &str) {
        let _ = self.sandbox.step(ccid, "hangup").await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_becomes_a_caller_script() {
        assert_eq!(dtmf_script(Some("123#")), "press 123#\n");
        assert_eq!(dtmf_script(Some(",,4821#")), "pause 1\npause 1\npress 4821#\n");
        assert_eq!(dtmf_script(Some("12,x3")), "press 12\npause 1\npress 3\n");
        assert_eq!(dtmf_script(None), "");
        assert!(ivrx_sandbox::Script::parse(&dtmf_script(Some(&"1".repeat(100)))).is_ok());
    }
}
