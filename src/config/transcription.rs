//! `[transcription.<engine>]`: each speech recognition engine's settings, the
//! fields of Telnyx's `transcription_engine_config` for that engine. Only the
//! section of `ivr.transcription_engine` is read; it checks itself against the
//! API's definition (the field tables of [`telnyx::spec`](crate::telnyx::spec),
//! the same ones the sandbox carrier validates with) and resolves to the
//! [`TranscriptionRequest`] the call session sends.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{invalid, ConfigError};
use crate::telnyx::commands::ValidationError;
use crate::telnyx::spec;
use crate::telnyx::transcription::{transcription_language, Engine, TranscriptionRequest};

/// Google's `transcription_engine_config` (`[transcription.google]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoogleConfig {
    /// A Google language code (`en`, `fr`, …); default: from `ivr.language`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `latest_long`, `latest_short`, `command_and_search`, `phone_call`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Send interim results too (ivrx's default: true, for the live view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interim_results: Option<bool>,
    /// Enhanced recognition (models `phone_call` and `video`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_enhanced: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profanity_filter: Option<bool>,
    /// Words and phrases to recognise better.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hints: Option<Vec<String>>,
}

/// Telnyx's own engine's `transcription_engine_config` (`[transcription.telnyx]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelnyxConfig {
    /// A language code (`en`, `cy`, …); default: from `ivr.language`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `openai/whisper-tiny` or `openai/whisper-large-v3-turbo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcription_model: Option<String>,
}

/// Deepgram's `transcription_engine_config` (`[transcription.deepgram]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepgramConfig {
    /// Required: `deepgram/nova-3` or `deepgram/nova-2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcription_model: Option<String>,
    /// A Deepgram language code of that model (`en-US`, `es-419`, …); default: from `ivr.language`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Send interim results too (ivrx's default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interim_results: Option<bool>,
    /// Capitalisation, punctuation and digits (Telnyx's default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smart_format: Option<bool>,
    /// Silence that ends an utterance, 0–5000 ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utterance_end_ms: Option<u32>,
    /// nova-3 only: terms to bias recognition toward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyterms: Option<Vec<String>>,
    /// Keywords and their boost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keywords_boosting: Option<BTreeMap<String, f64>>,
}

/// Azure's `transcription_engine_config` (`[transcription.azure]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureConfig {
    /// Required: `eastus`, `westeurope`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// An Azure language code (`en`, `cy`, `nb`, …); default: from `ivr.language`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The integration secret holding your Azure key (optional in some regions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_ref: Option<String>,
}

/// `[transcription]` of `ivrx.toml`: each engine's settings. Only the section
/// of the engine in use (`ivr.transcription_engine`) is read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscriptionSettings {
    /// `[transcription.google]`
    pub google: GoogleConfig,
    /// `[transcription.telnyx]`
    pub telnyx: TelnyxConfig,
    /// `[transcription.deepgram]`
    pub deepgram: DeepgramConfig,
    /// `[transcription.azure]`
    pub azure: AzureConfig,
}

impl TranscriptionSettings {
    /// The request for `engine` (`ivr.transcription_engine`, a wire name) with
    /// the speech language `speak_language` (`ivr.language`): the engine's
    /// section, its language defaulting to the one `speak_language` transcribes
    /// as, checked against the definition. An error names the key and the fix.
    pub fn resolve(&self, engine: &str, speak_language: &str) -> Result<TranscriptionRequest, ConfigError> {
        let engine = Engine::parse(engine).map_err(|message| invalid("ivr.transcription_engine", message))?;
        let (mut config, interim) = match engine {
            Engine::Google => (to_object(&self.google), true),
            Engine::Telnyx => (to_object(&self.telnyx), false),
            Engine::Deepgram => {
                let mut c = to_object(&self.deepgram);
                if let Some(model) = &self.deepgram.transcription_model {
                    c.insert("transcription_engine".into(), Value::from(model.as_str()));
                }
                (c, true)
            }
            Engine::Azure => {
                let mut c = to_object(&self.azure);
                c.insert("transcription_engine".into(), Value::from("Azure"));
                (c, false)
            }
        };
        let section = section(engine);
        spec::check_engine_config(engine.as_str(), &Value::Object(config.clone()), "")
            .map_err(|e| settings_error(engine, e))?;
        if !config.contains_key("language") {
            let model = config.get("transcription_model").and_then(Value::as_str);
            let language = match engine.languages(model) {
                Some(list) => transcription_language(speak_language, list).map(str::to_string).ok_or_else(|| {
                    invalid(
                        "ivr.language",
                        format!(
                            "{engine} does not transcribe {speak_language:?}: set language under \
                             [transcription.{section}] (closest: {}) or choose another transcription_engine",
                            spec::suggest(speak_language, list)
                        ),
                    )
                })?,
                None => primary(speak_language),
            };
            config.insert("language".into(), Value::from(language));
        }
        if interim && !config.contains_key("interim_results") {
            config.insert("interim_results".into(), Value::Bool(true));
        }
        Ok(TranscriptionRequest { engine, config })
    }
}

/// The engine's section under `[transcription]`, e.g. `google`.
fn section(engine: Engine) -> &'static str {
    match engine {
        Engine::Google => "google",
        Engine::Telnyx => "telnyx",
        Engine::Deepgram => "deepgram",
        Engine::Azure => "azure",
    }
}

fn to_object<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The definition's refusal of a section, as the section's key and the fix.
fn settings_error(engine: Engine, e: ValidationError) -> ConfigError {
    let section = section(engine);
    let key_of = |pointer: &str| format!("transcription.{section}{}", pointer.replace('/', "."));
    match e {
        ValidationError::Missing { pointer } => {
            let name = pointer.trim_start_matches('/');
            let values = engine.values_of(name);
            let example = values.last().map(|v| format!(" = {v:?}")).unwrap_or_default();
            let choices = if values.len() > 1 { format!(" (one of {})", preview(&values)) } else { String::new() };
            invalid(
                key_of(&pointer),
                format!(
                    "required with transcription_engine = {:?}: add {name}{example} under [transcription.{section}]{choices}",
                    engine.as_str()
                ),
            )
        }
        ValidationError::Invalid { pointer, detail } => invalid(key_of(&pointer), detail),
        ValidationError::BadRequest(detail) => invalid(format!("transcription.{section}"), detail),
    }
}

/// The first values of a list, quoted, with "…" when there are more.
fn preview(list: &[&str]) -> String {
    let mut s = list.iter().take(6).map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
    if list.len() > 6 {
        s.push_str(", …");
    }
    s
}

fn primary(language: &str) -> String {
    language.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal's key and message.
    #[derive(Debug)]
    struct Refusal {
        key: String,
        message: String,
    }

    impl std::fmt::Display for Refusal {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}: {}", self.key, self.message)
        }
    }

    fn resolve(engine: &str, settings: TranscriptionSettings, lang: &str) -> Result<Value, Refusal> {
        settings.resolve(engine, lang).map(|r| Value::Object(r.config)).map_err(|e| match e {
            ConfigError::Invalid { key, message } => Refusal { key, message },
            other => panic!("expected Invalid, got {other}"),
        })
    }

    #[test]
    fn the_default_needs_no_settings() {
        let r = TranscriptionSettings::default().resolve("Google", "en-US").unwrap();
        assert_eq!(r, TranscriptionRequest::default(), "Google, in English, with interim results");
    }

    #[test]
    fn each_engine_resolves_with_its_required_fields() {
        let mut s = TranscriptionSettings::default();
        assert_eq!(
            resolve("Telnyx", s.clone(), "cy-GB").unwrap(),
            serde_json::json!({"language": "cy"}),
            "Telnyx sends finals only"
        );
        s.deepgram.transcription_model = Some("deepgram/nova-3".into());
        assert_eq!(
            resolve("Deepgram", s.clone(), "en-US").unwrap(),
            serde_json::json!({"transcription_engine": "deepgram/nova-3", "transcription_model": "deepgram/nova-3",
                               "language": "en-US", "interim_results": true})
        );
        s.azure.region = Some("westeurope".into());
        assert_eq!(
            resolve("Azure", s.clone(), "nb-NO").unwrap(),
            serde_json::json!({"transcription_engine": "Azure", "region": "westeurope", "language": "nb"})
        );
        s.google.model = Some("phone_call".into());
        s.google.language = Some("fr".into());
        assert_eq!(
            resolve("Google", s, "en-US").unwrap(),
            serde_json::json!({"model": "phone_call", "language": "fr", "interim_results": true}),
            "a language set under [transcription.google] wins"
        );
    }

    #[test]
    fn bad_settings_name_the_key_and_the_fix() {
        let s = TranscriptionSettings::default();
        let e = resolve("google", s.clone(), "en-US").unwrap_err();
        assert_eq!(e.key, "ivr.transcription_engine");
        assert!(e.message.contains("use \"Google\""), "{e}");
        let e = resolve("xAI", s.clone(), "en-US").unwrap_err();
        assert!(e.message.contains("does not configure"), "{e}");
        let e = resolve("Deepgram", s.clone(), "en-US").unwrap_err();
        assert_eq!(e.key, "transcription.deepgram.transcription_model");
        assert!(
            e.message.contains("add transcription_model = \"deepgram/nova-3\" under [transcription.deepgram]"),
            "{e}"
        );
        let e = resolve("Azure", s.clone(), "en-US").unwrap_err();
        assert_eq!(e.key, "transcription.azure.region");
        let e = resolve("Google", s.clone(), "cy-GB").unwrap_err();
        assert_eq!(e.key, "ivr.language");
        assert!(e.message.contains("[transcription.google]"), "{e}");
        let mut bad = s.clone();
        bad.deepgram.transcription_model = Some("nova-3".into());
        let e = resolve("Deepgram", bad, "en-US").unwrap_err();
        assert_eq!(e.key, "transcription.deepgram.transcription_model");
        assert!(e.message.contains("closest: \"deepgram/nova-3\""), "{e}");
        let mut bad = s.clone();
        bad.deepgram.transcription_model = Some("deepgram/nova-3".into());
        let e = resolve("Deepgram", bad, "ja-JP").unwrap_err();
        assert_eq!(e.key, "ivr.language");
        let mut bad = s;
        bad.google.language = Some("en-US".into());
        let e = resolve("Google", bad, "en-US").unwrap_err();
        assert_eq!(e.key, "transcription.google.language");
        assert!(e.message.contains("closest: \"en\""), "{e}");
        assert!(!e.to_string().contains('\n'));
    }
}
