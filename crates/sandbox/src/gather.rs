//! DTMF collection for `gather` and `gather_using_speak`, as plain data and
//! functions: digits in, an outcome out.
//!
//! Telnyx's defaults apply when a field is absent: `valid_digits`
//! `0123456789#*`, `minimum_digits` 1, `maximum_digits` 128, `terminating_digit`
//! `#`, `timeout_millis` 60000 (for `gather_using_speak`: after the prompt ends),
//! `inter_digit_timeout_millis` 5000, `maximum_tries` 3 (prompted gathers only),
//! and for `gather` an `initial_timeout_millis` of 5000 for the first key.

use std::time::Duration;

use ivrx_telnyx::commands::{Gather, GatherUsingSpeak};
use ivrx_telnyx::events::GatherStatus;

use super::timing::spoken_text;

/// What a gather collects and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherSpec {
    /// Keys that may be pressed.
    pub valid_digits: String,
    /// Fewest digits for a valid result.
    pub min_digits: usize,
    /// The gather ends as soon as this many digits are in.
    pub max_digits: usize,
    /// The key that ends input early (not part of the digits).
    pub terminating_digit: Option<char>,
    /// Wait for the first key (after the prompt, if any).
    pub first_timeout: Duration,
    /// Wait between keys.
    pub inter_digit_timeout: Duration,
    /// `gather` only: the whole gather ends after this long.
    pub overall_timeout: Option<Duration>,
    /// Attempts in all (prompted gathers replay the prompt).
    pub max_tries: u32,
    /// The prompt's spoken text (gather_using_speak).
    pub prompt: Option<String>,
    /// Said instead of the prompt after invalid input.
    pub invalid_prompt: Option<String>,
}

const DEFAULT_VALID: &str = "0123456789#*";

fn millis(v: Option<u64>, default: u64) -> Duration {
    Duration::from_millis(v.unwrap_or(default).min(24 * 3_600_000))
}

fn digit_bounds(min: Option<u32>, max: Option<u32>) -> (usize, usize) {
    let min = min.unwrap_or(1).clamp(1, 128) as usize;
    let max = (max.unwrap_or(128).clamp(1, 128) as usize).max(min);
    (min, max)
}

fn terminating(t: Option<&String>) -> Option<char> {
    match t {
        None => Some('#'),
        Some(s) => s.chars().next(),
    }
}

fn valid_set(v: Option<&String>) -> String {
    v.filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| DEFAULT_VALID.to_string()).to_ascii_uppercase()
}

impl GatherSpec {
    /// The spec of a `gather_using_speak` command.
    pub fn from_gather_using_speak(b: &GatherUsingSpeak) -> Self {
        let ssml = b.payload_type.as_deref() == Some("ssml");
        Self {
            first_timeout: millis(b.timeout_millis, 60_000),
            max_tries: b.maximum_tries.unwrap_or(3).clamp(1, 10),
            prompt: Some(spoken_text(b.payload.as_deref().unwrap_or_default(), ssml)),
            invalid_prompt: b.invalid_payload.as_deref().filter(|s| !s.trim().is_empty()).map(|p| spoken_text(p, ssml)),
            ..Self::keys(
                b.valid_digits.as_ref(),
                (b.minimum_digits, b.maximum_digits),
                b.terminating_digit.as_ref(),
                b.inter_digit_timeout_millis,
            )
        }
    }

    /// The spec of a `gather` command (no prompt, one try).
    pub fn from_gather(b: &Gather) -> Self {
        Self {
            first_timeout: millis(b.initial_timeout_millis, 5_000),
            overall_timeout: Some(millis(b.timeout_millis, 60_000)),
            ..Self::keys(
                b.valid_digits.as_ref(),
                (b.minimum_digits, b.maximum_digits),
                b.terminating_digit.as_ref(),
                b.inter_digit_timeout_millis,
            )
        }
    }

    /// The keys both commands take, from the fields they share: one try,
    /// no prompt, no overall limit, and no wait for the first key (each
    /// command sets its own).
    fn keys(
        valid: Option<&String>,
        (min, max): (Option<u32>, Option<u32>),
        terminating_digit: Option<&String>,
        inter_digit_millis: Option<u64>,
    ) -> Self {
        let (min_digits, max_digits) = digit_bounds(min, max);
        Self {
            valid_digits: valid_set(valid),
            min_digits,
            max_digits,
            terminating_digit: terminating(terminating_digit),
            first_timeout: Duration::ZERO,
            inter_digit_timeout: millis(inter_digit_millis, 5_000),
            overall_timeout: None,
            max_tries: 1,
            prompt: None,
            invalid_prompt: None,
        }
    }
}

/// What happens after a key or a timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatherStep {
    /// Keep collecting; the inter-digit timeout restarts.
    Continue,
    /// The gather is over: send `call.gather.ended` with these digits.
    End {
        /// `valid`, `invalid` or `timeout`.
        status: GatherStatus,
        /// The digits collected (without the terminating key).
        digits: String,
    },
    /// The attempt failed but tries remain: say this, then collect again.
    Retry {
        /// What to say (the invalid prompt or the prompt again).
        prompt: String,
    },
}

/// A gather in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherState {
    /// Its rules.
    pub spec: GatherSpec,
    /// Digits of the current attempt.
    pub digits: String,
    /// Attempts started (1 for the first).
    pub tries: u32,
}

impl GatherState {
    /// A gather starting its first attempt.
    pub fn new(spec: GatherSpec) -> Self {
        Self { spec, digits: String::new(), tries: 1 }
    }

    /// A key was pressed.
    pub fn on_digit(&mut self, key: char) -> GatherStep {
        let key = key.to_ascii_uppercase();
        if self.spec.terminating_digit.map(|t| t.to_ascii_uppercase()) == Some(key) {
            return if self.digits.len() >= self.spec.min_digits {
                self.end(GatherStatus::Valid)
            } else {
                self.fail(GatherStatus::Invalid)
            };
        }
        self.digits.push(key);
        if !self.spec.valid_digits.contains(key) {
            return self.fail(GatherStatus::Invalid);
        }
        if self.digits.len() >= self.spec.max_digits {
            return self.end(GatherStatus::Valid);
        }
        GatherStep::Continue
    }

    /// The current wait (first key or between keys) ran out.
    pub fn on_timeout(&mut self) -> GatherStep {
        if self.digits.is_empty() {
            self.fail(GatherStatus::Timeout)
        } else if self.digits.len() >= self.spec.min_digits {
            self.end(GatherStatus::Valid)
        } else {
            self.fail(GatherStatus::Invalid)
        }
    }

    /// The whole gather's time ran out (`gather`'s `timeout_millis`): no retry.
    pub fn on_overall_timeout(&mut self) -> GatherStep {
        self.spec.max_tries = self.tries;
        self.on_timeout()
    }

    /// The gather ends for an outside reason (`cancelled`, `call_hangup`).
    pub fn interrupt(&mut self, status: GatherStatus) -> GatherStep {
        self.end(status)
    }

    fn end(&mut self, status: GatherStatus) -> GatherStep {
        GatherStep::End { status, digits: std::mem::take(&mut self.digits) }
    }

    fn fail(&mut self, status: GatherStatus) -> GatherStep {
        match &self.spec.prompt {
            Some(prompt) if self.tries < self.spec.max_tries => {
                self.tries += 1;
                self.digits.clear();
                let again = match (&status, &self.spec.invalid_prompt) {
                    (GatherStatus::Invalid, Some(invalid)) => invalid.clone(),
                    _ => prompt.clone(),
                };
                GatherStep::Retry { prompt: again }
            }
            _ => self.end(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gus(body: serde_json::Value) -> GatherState {
        let b: GatherUsingSpeak = serde_json::from_value(body).unwrap();
        GatherState::new(GatherSpec::from_gather_using_speak(&b))
    }

    fn end(status: GatherStatus, digits: &str) -> GatherStep {
        GatherStep::End { status, digits: digits.into() }
    }

    #[test]
    fn telnyx_defaults() {
        let g = gus(json!({"payload": "press a key", "voice": "female"}));
        assert_eq!(g.spec.valid_digits, "0123456789#*");
        assert_eq!((g.spec.min_digits, g.spec.max_digits), (1, 128));
        assert_eq!(g.spec.terminating_digit, Some('#'));
        assert_eq!(g.spec.first_timeout, Duration::from_secs(60));
        assert_eq!(g.spec.inter_digit_timeout, Duration::from_secs(5));
        assert_eq!(g.spec.max_tries, 3);
        let b: Gather = serde_json::from_value(json!({})).unwrap();
        let s = GatherSpec::from_gather(&b);
        assert_eq!(
            (s.first_timeout, s.overall_timeout, s.max_tries),
            (Duration::from_secs(5), Some(Duration::from_secs(60)), 1)
        );
    }

    #[test]
    fn max_digits_ends_valid() {
        let mut g = gus(json!({"payload": "p", "voice": "male", "maximum_digits": 1, "valid_digits": "123"}));
        assert_eq!(g.on_digit('2'), end(GatherStatus::Valid, "2"));
        let mut g = gus(json!({"payload": "p", "voice": "male", "maximum_digits": 3}));
        assert_eq!(g.on_digit('1'), GatherStep::Continue);
        assert_eq!(g.on_digit('2'), GatherStep::Continue);
        assert_eq!(g.on_digit('3'), end(GatherStatus::Valid, "123"));
    }

    #[test]
    fn terminating_digit_ends_and_is_not_collected() {
        let mut g = gus(json!({"payload": "p", "voice": "male", "minimum_digits": 2}));
        g.on_digit('4');
        g.on_digit('2');
        assert_eq!(g.on_digit('#'), end(GatherStatus::Valid, "42"));
        let mut g = gus(json!({"payload": "p", "voice": "male", "terminating_digit": "*", "maximum_tries": 1}));
        assert_eq!(g.on_digit('*'), end(GatherStatus::Invalid, ""));
    }

    #[test]
    fn invalid_digit_retries_with_invalid_payload_then_ends_invalid() {
        let mut g = gus(json!({"payload": "press 1 or 2", "voice": "male", "valid_digits": "12",
                               "maximum_tries": 2, "invalid_payload": "sorry that is not an option"}));
        assert_eq!(g.on_digit('9'), GatherStep::Retry { prompt: "sorry that is not an option".into() });
        assert_eq!(g.digits, "");
        assert_eq!(g.on_digit('7'), end(GatherStatus::Invalid, "7"));
    }

    #[test]
    fn timeouts_retry_the_prompt_then_end_timeout() {
        let mut g = gus(json!({"payload": "press 1", "voice": "male", "maximum_tries": 2}));
        assert_eq!(g.on_timeout(), GatherStep::Retry { prompt: "press 1".into() });
        assert_eq!(g.on_timeout(), end(GatherStatus::Timeout, ""));
    }

    #[test]
    fn inter_digit_timeout_with_enough_digits_is_valid() {
        let mut g = gus(json!({"payload": "p", "voice": "male", "minimum_digits": 2, "maximum_tries": 1}));
        g.on_digit('1');
        assert_eq!(g.on_timeout(), end(GatherStatus::Invalid, "1"));
        let mut g = gus(json!({"payload": "p", "voice": "male", "minimum_digits": 2}));
        g.on_digit('1');
        g.on_digit('2');
        assert_eq!(g.on_timeout(), end(GatherStatus::Valid, "12"));
    }

    #[test]
    fn plain_gather_never_retries() {
        let b: Gather = serde_json::from_value(json!({"valid_digits": "0"})).unwrap();
        let mut g = GatherState::new(GatherSpec::from_gather(&b));
        assert_eq!(g.on_digit('5'), end(GatherStatus::Invalid, "5"));
        let mut g = GatherState::new(GatherSpec::from_gather(&b));
        assert_eq!(g.on_overall_timeout(), end(GatherStatus::Timeout, ""));
        let mut g = GatherState::new(GatherSpec::from_gather(&b));
        g.on_digit('0');
        assert_eq!(g.interrupt(GatherStatus::Cancelled), end(GatherStatus::Cancelled, "0"));
    }

    #[test]
    fn overall_timeout_does_not_retry_prompted_gathers() {
        let mut g = gus(json!({"payload": "p", "voice": "male"}));
        assert_eq!(g.on_overall_timeout(), end(GatherStatus::Timeout, ""));
    }
}
