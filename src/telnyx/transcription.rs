//! Transcription per engine: the typed `transcription_engine_config` of each
//! engine ivrx configures (Telnyx's own, Google, Deepgram, Azure), which is also
//! the engine's section of `ivrx.toml` (`[transcription.google]`, …); the
//! language a speak language transcribes as; and the check that turns those
//! settings into a request Telnyx accepts, with the same field table the
//! sandbox validates against ([`spec`](super::spec)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::commands::{TranscriptionStart, ValidationError};
use super::spec::{self, Kind};

/// A speech recognition engine ivrx configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Google (the default of Telnyx and of ivrx).
    Google,
    /// Telnyx's own engine (Whisper models).
    Telnyx,
    /// Deepgram (nova-2 and nova-3 models; the model is required).
    Deepgram,
    /// Azure (the region is required).
    Azure,
}

impl Engine {
    /// Every engine ivrx configures.
    pub const ALL: [Engine; 4] = [Engine::Google, Engine::Telnyx, Engine::Deepgram, Engine::Azure];

    /// The name on the wire (`transcription_engine`), e.g. `Google`.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Google => "Google",
            Engine::Telnyx => "Telnyx",
            Engine::Deepgram => "Deepgram",
            Engine::Azure => "Azure",
        }
    }

    /// Its section under `[transcription]` in `ivrx.toml`, e.g. `google`.
    pub fn section(self) -> &'static str {
        match self {
            Engine::Google => "google",
            Engine::Telnyx => "telnyx",
            Engine::Deepgram => "deepgram",
            Engine::Azure => "azure",
        }
    }

    /// The engine of that wire name; the error says what to write instead.
    pub fn parse(name: &str) -> Result<Engine, String> {
        if let Some(e) = Engine::ALL.into_iter().find(|e| e.as_str() == name) {
            return Ok(e);
        }
        let names: Vec<&str> = Engine::ALL.iter().map(|e| e.as_str()).collect();
        let quoted = names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
        if let Some(e) = Engine::ALL.into_iter().find(|e| e.as_str().eq_ignore_ascii_case(name)) {
            return Err(format!("{name:?} is not an engine name (names are case-sensitive): use {:?}", e.as_str()));
        }
        if spec::tables::TRANSCRIPTION_ENGINES.contains(&name) {
            return Err(format!("{name:?} is a Telnyx engine ivrx does not configure: use one of {quoted}"));
        }
        Err(format!("{}; ivrx configures {quoted}", spec::not_one_of(name, &names)))
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// A checked transcription request: the engine and its
/// `transcription_engine_config`, as `answer` (`transcription_config`) and
/// `transcription_start` carry them.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionRequest {
    /// The engine.
    pub engine: Engine,
    /// Its `transcription_engine_config`.
    pub config: Map<String, Value>,
}

impl Default for TranscriptionRequest {
    /// Google, in English, with interim results: what the default configuration resolves to.
    fn default() -> Self {
        let mut config = Map::new();
        config.insert("language".into(), Value::from("en"));
        config.insert("interim_results".into(), Value::Bool(true));
        TranscriptionRequest { engine: Engine::Google, config }
    }
}

impl TranscriptionRequest {
    /// The `transcription_start` body for `tracks` (`inbound`, `outbound` or `both`).
    pub fn start(&self, tracks: &str) -> TranscriptionStart {
        TranscriptionStart {
            transcription_engine: Some(self.engine.as_str().to_string()),
            transcription_engine_config: Some(Value::Object(self.config.clone())),
            transcription_tracks: Some(tracks.to_string()),
            ..Default::default()
        }
    }

    /// The `transcription_config` of `answer` and `dial`: the same request.
    pub fn config_for_answer(&self, tracks: &str) -> Value {
        serde_json::to_value(self.start(tracks)).unwrap_or(Value::Null)
    }

    /// Whether the engine sends interim results with this configuration.
    pub fn interim(&self) -> bool {
        self.config.get("interim_results").and_then(Value::as_bool).unwrap_or(false)
    }
}

/// Settings that do not make a request Telnyx accepts: the `ivrx.toml` key and
/// what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingsError {
    /// Dotted key, e.g. `transcription.deepgram.transcription_model`.
    pub key: String,
    /// What is wrong and the fix.
    pub message: String,
}

impl TranscriptionSettings {
    /// The request for `engine` (a wire name) with the speech language
    /// `speak_language`: the engine's section, its language defaulting to the
    /// one `speak_language` transcribes as, checked against the definition.
    pub fn resolve(&self, engine: &str, speak_language: &str) -> Result<TranscriptionRequest, SettingsError> {
        let engine = Engine::parse(engine)
            .map_err(|message| SettingsError { key: "ivr.transcription_engine".into(), message })?;
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
        let section = engine.section();
        spec::check_engine_config(engine.as_str(), &Value::Object(config.clone()), "")
            .map_err(|e| settings_error(engine, e))?;
        if !config.contains_key("language") {
            let list = language_list(engine, &config);
            let language = match list {
                Some(list) => {
                    transcription_language(speak_language, list).map(str::to_string).ok_or_else(|| SettingsError {
                        key: "ivr.language".into(),
                        message: format!(
                            "{engine} does not transcribe {speak_language:?}: set language under \
                         [transcription.{section}] (closest: {}) or choose another transcription_engine",
                            spec::suggest(speak_language, list)
                        ),
                    })?
                }
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

fn to_object<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The closed language list of the engine's shape for this config, if any.
fn language_list(engine: Engine, config: &Map<String, Value>) -> Option<&'static [&'static str]> {
    let shapes = spec::engine_shapes(engine.as_str())?;
    let model = config.get("transcription_model").and_then(Value::as_str).unwrap_or_default();
    let shape = shapes.iter().find(|s| {
        shapes.len() == 1
            || spec::field(s, "transcription_model").is_some_and(|f| matches!(f.kind, Kind::Const(c) if c == model))
    })?;
    match spec::field(shape, "language")?.kind {
        Kind::OneOf(list) => Some(list),
        _ => None,
    }
}

fn settings_error(engine: Engine, e: ValidationError) -> SettingsError {
    let section = engine.section();
    let key_of = |pointer: &str| format!("transcription.{section}{}", pointer.replace('/', "."));
    match e {
        ValidationError::Missing { pointer } => {
            let name = pointer.trim_start_matches('/');
            let values = spec::engine_shapes(engine.as_str())
                .map(|shapes| {
                    let mut all = Vec::new();
                    for s in shapes {
                        match spec::field(s, name).map(|f| f.kind) {
                            Some(Kind::OneOf(list)) => all.extend_from_slice(list),
                            Some(Kind::Const(c)) => all.push(c),
                            _ => {}
                        }
                    }
                    all
                })
                .unwrap_or_default();
            let example = values.last().map(|v| format!(" = {v:?}")).unwrap_or_default();
            let choices = if values.len() > 1 { format!(" (one of {})", preview(&values)) } else { String::new() };
            SettingsError {
                key: key_of(&pointer),
                message: format!(
                    "required with transcription_engine = {:?}: add {name}{example} under [transcription.{section}]{choices}",
                    engine.as_str()
                ),
            }
        }
        ValidationError::Invalid { pointer, detail } => SettingsError { key: key_of(&pointer), message: detail },
        ValidationError::BadRequest(detail) => {
            SettingsError { key: format!("transcription.{section}"), message: detail }
        }
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

/// The code a speak language (`en-US`, `cmn-CN`, `arb`, …) transcribes as in an
/// engine's language list: the same tag, else its language with the region
/// (`zh-CN`), else the language alone (`en`). Speak languages use ISO 639-3
/// codes where the engines use ISO 639-1: `arb` is `ar`, `cmn` is `zh`, and
/// Norwegian Bokmål `nb` is `no` where an engine lists only that.
pub fn transcription_language(speak_language: &str, list: &[&'static str]) -> Option<&'static str> {
    let find = |code: &str| list.iter().copied().find(|c| *c == code);
    if let Some(exact) = find(speak_language) {
        return Some(exact);
    }
    let mut parts = speak_language.split(['-', '_']);
    let lang = parts.next().unwrap_or_default().to_ascii_lowercase();
    let region = parts.next().map(str::to_ascii_uppercase);
    let aliases: &[&str] = match lang.as_str() {
        "arb" => &["ar"],
        "cmn" => &["zh"],
        "nb" => &["nb", "no"],
        _ => &[],
    };
    let langs = std::iter::once(lang.as_str()).chain(aliases.iter().copied());
    for l in langs {
        if let Some(r) = &region {
            if let Some(c) = find(&format!("{l}-{r}")) {
                return Some(c);
            }
        }
        if let Some(c) = find(l) {
            return Some(c);
        }
    }
    // The engine's only variant of the language (`es-MX` → nova-2's `es-419`).
    let mut variants = list.iter().copied().filter(|c| c.split(['-', '_']).next() == Some(lang.as_str()));
    match (variants.next(), variants.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telnyx::spec::tables::*;

    #[test]
    fn every_speak_language_maps_where_the_engine_has_it() {
        let google: Vec<_> =
            SPEAK_LANGUAGES.iter().map(|l| (*l, transcription_language(l, GOOGLE_LANGUAGES))).collect();
        for (speak, code) in &google {
            match *speak {
                // Google lists no Welsh.
                "cy-GB" => assert_eq!(*code, None),
                _ => assert!(code.is_some(), "{speak} has no Google language"),
            }
        }
        let pick = |l: &str, list| transcription_language(l, list);
        assert_eq!(pick("en-US", GOOGLE_LANGUAGES), Some("en"));
        assert_eq!(pick("arb", GOOGLE_LANGUAGES), Some("ar"));
        assert_eq!(pick("cmn-CN", GOOGLE_LANGUAGES), Some("zh"));
        assert_eq!(pick("nb-NO", GOOGLE_LANGUAGES), Some("no"));
        assert_eq!(pick("en-GB-WLS", GOOGLE_LANGUAGES), Some("en"));
        assert_eq!(pick("cy-GB", TELNYX_LANGUAGES), Some("cy"));
        assert_eq!(pick("nb-NO", AZURE_LANGUAGES), Some("nb"));
        assert_eq!(pick("en-US", DEEPGRAM_NOVA3_LANGUAGES), Some("en-US"));
        assert_eq!(pick("de-DE", DEEPGRAM_NOVA3_LANGUAGES), Some("de"));
        assert_eq!(pick("cmn-CN", DEEPGRAM_NOVA2_LANGUAGES), Some("zh-CN"));
        assert_eq!(pick("ja-JP", DEEPGRAM_NOVA3_LANGUAGES), None);
        for (list, name) in [(GOOGLE_LANGUAGES, "Google"), (TELNYX_LANGUAGES, "Telnyx"), (AZURE_LANGUAGES, "Azure")] {
            for l in SPEAK_LANGUAGES {
                if let Some(code) = transcription_language(l, list) {
                    assert!(list.contains(&code), "{name}: {l} -> {code}");
                }
            }
        }
    }

    fn resolve(engine: &str, settings: TranscriptionSettings, lang: &str) -> Result<Value, SettingsError> {
        settings.resolve(engine, lang).map(|r| Value::Object(r.config))
    }

    #[test]
    fn the_default_needs_no_settings() {
        let r = TranscriptionSettings::default().resolve("Google", "en-US").unwrap();
        assert_eq!(r, TranscriptionRequest::default());
        assert_eq!(r.engine, Engine::Google);
        assert_eq!(Value::Object(r.config.clone()), serde_json::json!({"language": "en", "interim_results": true}));
        assert!(r.interim());
        let body = r.start("inbound");
        assert_eq!(body.transcription_engine.as_deref(), Some("Google"));
        assert_eq!(r.config_for_answer("inbound")["transcription_tracks"], "inbound");
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
