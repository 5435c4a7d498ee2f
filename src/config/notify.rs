//! `[notify]`: who hears about a call that turns, and how. Supervisors get an
//! SMS (Telnyx Messaging, from the IVR's number) when a transfer is decided
//! or fails, for the queues and reasons they follow, at most
//! `max_per_supervisor` in `rate_window_secs` each. Checked at start: a bad
//! value names its key and the fix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{invalid, is_e164, ConfigError, QueueConfig};
use crate::policy::Reason;

/// `[notify]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Who gets an SMS (`[[notify.supervisors]]`); none: no SMS.
    pub supervisors: Vec<SupervisorConfig>,
    /// Most SMS one supervisor gets within `rate_window_secs`; the rest are
    /// recorded as `rate_limited` and not sent.
    pub max_per_supervisor: u32,
    /// The window of `max_per_supervisor`, seconds.
    pub rate_window_secs: u64,
    /// Attempts per SMS when Telnyx answers 5xx or 429 or cannot be reached.
    pub max_attempts: u32,
    /// Alerts waiting to be sent at most; beyond, an alert is recorded as
    /// `dropped` (the call never waits for an alert).
    pub queue_capacity: usize,
    /// The signed CRM webhook (`[notify.crm]`).
    pub crm: CrmConfig,
}

/// `[notify.crm]`: a signed JSON event to a CRM on every transfer decision
/// and outcome.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrmConfig {
    /// Where events are posted (`IVRX_CRM_URL`); none: no CRM events.
    pub url: Option<String>,
    /// The shared HMAC secret (`IVRX_CRM_SECRET`), 16 characters or more.
    pub secret: Option<String>,
    /// Attempts per event (anything but a 2xx is retried).
    pub max_attempts: u32,
    /// Wait before the second attempt, milliseconds; doubled each time after.
    pub backoff_ms: u64,
    /// How long one attempt may take, milliseconds.
    pub timeout_ms: u64,
}

impl Default for CrmConfig {
    fn default() -> Self {
        Self { url: None, secret: None, max_attempts: 5, backoff_ms: 500, timeout_ms: 5000 }
    }
}

impl std::fmt::Debug for CrmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrmConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "****"))
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl CrmConfig {
    /// Checks the section: a URL needs its secret.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.url else { return Ok(()) };
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(invalid(
                    "notify.crm.url",
                    format!(
                    "{url:?} is not an absolute http:// or https:// URL, e.g. \"https://crm.example.com/hooks/ivrx\""
                ),
                ))
            }
        }
        if self.secret.as_deref().is_none_or(|s| s.trim().chars().count() < 16) {
            return Err(invalid(
                "notify.crm.secret",
                "required with notify.crm.url, at least 16 characters: the shared secret the CRM checks the \
                 HMAC-SHA256 signature with ([notify.crm] secret or IVRX_CRM_SECRET; e.g. `openssl rand -hex 32`)",
            ));
        }
        if !(1..=20).contains(&self.max_attempts) {
            return Err(invalid("notify.crm.max_attempts", "must be between 1 and 20"));
        }
        if !(10..=60_000).contains(&self.backoff_ms) {
            return Err(invalid("notify.crm.backoff_ms", "must be between 10 and 60000"));
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(invalid("notify.crm.timeout_ms", "must be between 100 and 60000"));
        }
        Ok(())
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            supervisors: Vec::new(),
            max_per_supervisor: 10,
            rate_window_secs: 3600,
            max_attempts: 3,
            queue_capacity: 256,
            crm: CrmConfig::default(),
        }
    }
}

/// One `[[notify.supervisors]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorConfig {
    /// Their mobile number, E.164.
    pub number: String,
    /// The queues they follow (names of `[queues.*]`); empty: every queue.
    pub queues: Vec<String>,
    /// The decision reasons they follow (`asked_for_human`, `rapid_decline`,
    /// …); empty: every reason.
    pub reasons: Vec<String>,
}

impl SupervisorConfig {
    /// True when this supervisor follows a transfer to `queue` for `reason`.
    pub fn follows(&self, queue: &str, reason: &str) -> bool {
        (self.queues.is_empty() || self.queues.iter().any(|q| q == queue))
            && (self.reasons.is_empty() || self.reasons.iter().any(|r| r == reason))
    }
}

/// True for a decision reason ivrx knows.
fn is_reason(name: &str) -> bool {
    serde_json::from_value::<Reason>(serde_json::Value::String(name.to_string())).is_ok()
}

impl NotifyConfig {
    /// Checks the section against the configured queues.
    pub fn validate(&self, queues: &BTreeMap<String, QueueConfig>) -> Result<(), ConfigError> {
        for (i, s) in self.supervisors.iter().enumerate() {
            let key = |field: &str| format!("notify.supervisors[{i}].{field}");
            if !is_e164(&s.number) {
                return Err(invalid(
                    key("number"),
                    format!("{:?} is not a mobile number in E.164 form, e.g. \"+18005550123\"", s.number),
                ));
            }
            if let Some(q) = s.queues.iter().find(|q| !queues.contains_key(*q)) {
                let known: Vec<&str> = queues.keys().map(String::as_str).collect();
                return Err(invalid(
                    key("queues"),
                    format!(
                        "no queue {q:?}: name queues of [queues.*] ({}), or leave queues empty for all",
                        known.join(", ")
                    ),
                ));
            }
            if let Some(r) = s.reasons.iter().find(|r| !is_reason(r)) {
                return Err(invalid(
                    key("reasons"),
                    format!(
                        "{r:?} is not a decision reason: use asked_for_human, abuse, bot_frustration, churn_risk, \
                         buying_signal, rapid_decline, sentiment_floor, consecutive_negatives, correction, repetition, \
                         rapid_incline, operator, menu_choice or manual (empty: all)"
                    ),
                ));
            }
            if self.supervisors[..i].iter().any(|o| o.number == s.number) {
                return Err(invalid(key("number"), format!("{} is listed twice: list each supervisor once", s.number)));
            }
        }
        if self.max_per_supervisor == 0 {
            return Err(invalid(
                "notify.max_per_supervisor",
                "must be at least 1 (remove the supervisors to send none)",
            ));
        }
        if !(1..=7 * 24 * 3600).contains(&self.rate_window_secs) {
            return Err(invalid("notify.rate_window_secs", "must be between 1 and 604800 (a week)"));
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err(invalid("notify.max_attempts", "must be between 1 and 10"));
        }
        if !(1..=100_000).contains(&self.queue_capacity) {
            return Err(invalid("notify.queue_capacity", "must be between 1 and 100000"));
        }
        self.crm.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::default_queues;

    fn with(s: SupervisorConfig) -> NotifyConfig {
        NotifyConfig { supervisors: vec![s], ..NotifyConfig::default() }
    }

    fn key_of(c: &NotifyConfig) -> String {
        match c.validate(&default_queues()).unwrap_err() {
            ConfigError::Invalid { key, message } => format!("{key}: {message}"),
            e => e.to_string(),
        }
    }

    #[test]
    fn bad_values_name_their_key_and_the_fix() {
        let ok = SupervisorConfig { number: "+15555550123".into(), queues: vec!["support".into()], reasons: vec![] };
        assert!(with(ok.clone()).validate(&default_queues()).is_ok());
        assert!(NotifyConfig::default().validate(&default_queues()).is_ok());
        let e = key_of(&with(SupervisorConfig { number: "555-0123".into(), ..ok.clone() }));
        assert!(e.starts_with("notify.supervisors[0].number: ") && e.contains("E.164"), "{e}");
        let e = key_of(&with(SupervisorConfig { queues: vec!["billing".into()], ..ok.clone() }));
        assert!(e.starts_with("notify.supervisors[0].queues: ") && e.contains("support"), "{e}");
        let e = key_of(&with(SupervisorConfig { reasons: vec!["angry".into()], ..ok.clone() }));
        assert!(e.starts_with("notify.supervisors[0].reasons: ") && e.contains("rapid_decline"), "{e}");
        let twice = NotifyConfig { supervisors: vec![ok.clone(), ok.clone()], ..NotifyConfig::default() };
        assert!(key_of(&twice).starts_with("notify.supervisors[1].number"));
        let e = key_of(&NotifyConfig { max_per_supervisor: 0, ..with(ok.clone()) });
        assert!(e.starts_with("notify.max_per_supervisor"), "{e}");
        assert!(key_of(&NotifyConfig { rate_window_secs: 0, ..with(ok) }).starts_with("notify.rate_window_secs"));
        let crm = |url: &str, secret: Option<&str>| NotifyConfig {
            crm: CrmConfig { url: Some(url.into()), secret: secret.map(str::to_string), ..CrmConfig::default() },
            ..NotifyConfig::default()
        };
        assert!(key_of(&crm("crm.example/hooks", Some("0123456789abcdef"))).starts_with("notify.crm.url"));
        let e = key_of(&crm("https://crm.example/hooks", Some("short")));
        assert!(e.starts_with("notify.crm.secret") && e.contains("IVRX_CRM_SECRET"), "{e}");
        assert!(crm("https://crm.example/hooks", Some("0123456789abcdef")).validate(&default_queues()).is_ok());
    }

    #[test]
    fn supervisors_follow_their_queues_and_reasons() {
        let all = SupervisorConfig { number: "+15555550123".into(), ..Default::default() };
        assert!(all.follows("sales", "buying_signal"));
        let some = SupervisorConfig { queues: vec!["support".into()], reasons: vec!["abuse".into()], ..all };
        assert!(some.follows("support", "abuse"));
        assert!(!some.follows("sales", "abuse") && !some.follows("support", "rapid_decline"));
        assert!(is_reason("rapid_decline") && !is_reason("angry"));
    }
}
