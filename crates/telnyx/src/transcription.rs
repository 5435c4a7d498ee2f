//! Transcription requests: the speech recognition engines ivrx configures
//! (Telnyx's own, Google, Deepgram, Azure), the checked request that `answer`
//! and `dial` (`transcription_config`) and `transcription_start` carry, the
//! languages each engine takes ([`spec`](super::spec)), and the code a speak
//! language transcribes as. `ivrx.toml`'s engine sections resolve to a
//! [`TranscriptionRequest`]; the call session sends it.

use serde_json::{Map, Value};

use super::commands::TranscriptionStart;
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

    /// The closed list of languages the engine takes with `model` (its
    /// `transcription_model`, which tells Deepgram's shapes apart), if it has one.
    pub fn languages(self, model: Option<&str>) -> Option<&'static [&'static str]> {
        let shapes = spec::engine_shapes(self.as_str())?;
        let model = model.unwrap_or_default();
        let shape = shapes.iter().find(|s| {
            shapes.len() == 1
                || spec::field(s, "transcription_model").is_some_and(|f| matches!(f.kind, Kind::Const(c) if c == model))
        })?;
        match spec::field(shape, "language")?.kind {
            Kind::OneOf(list) => Some(list),
            _ => None,
        }
    }

    /// The values a field of the engine's configuration takes, over all its
    /// shapes (empty for an open field).
    pub fn values_of(self, field: &str) -> Vec<&'static str> {
        let mut all = Vec::new();
        for shape in spec::engine_shapes(self.as_str()).unwrap_or_default() {
            match spec::field(shape, field).map(|f| f.kind) {
                Some(Kind::OneOf(list)) => all.extend_from_slice(list),
                Some(Kind::Const(c)) => all.push(c),
                _ => {}
            }
        }
        all
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    use crate::spec::tables::*;

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

    #[test]
    fn the_default_request_is_google_in_english_with_interims() {
        let r = TranscriptionRequest::default();
        assert_eq!(r.engine, Engine::Google);
        assert_eq!(Value::Object(r.config.clone()), serde_json::json!({"language": "en", "interim_results": true}));
        assert!(r.interim());
        let body = r.start("inbound");
        assert_eq!(body.transcription_engine.as_deref(), Some("Google"));
        assert_eq!(r.config_for_answer("inbound")["transcription_tracks"], "inbound");
        spec::check(
            spec::body("transcription_config").unwrap(),
            r.config_for_answer("inbound").as_object().unwrap(),
            "",
        )
        .expect("the default request is valid");
    }

    #[test]
    fn engines_are_named_exactly() {
        assert_eq!(Engine::parse("Deepgram"), Ok(Engine::Deepgram));
        assert!(Engine::parse("google").unwrap_err().contains("use \"Google\""));
        assert!(Engine::parse("xAI").unwrap_err().contains("does not configure"));
        assert!(Engine::parse("Gogle").unwrap_err().contains("closest: \"Google\""));
    }

    #[test]
    fn each_engine_lists_its_languages_and_required_values() {
        assert_eq!(Engine::Google.languages(None), Some(GOOGLE_LANGUAGES));
        assert_eq!(Engine::Deepgram.languages(Some("deepgram/nova-2")), Some(DEEPGRAM_NOVA2_LANGUAGES));
        assert_eq!(Engine::Deepgram.languages(None), None, "Deepgram's list depends on the model");
        assert_eq!(Engine::Deepgram.values_of("transcription_model"), vec!["deepgram/nova-2", "deepgram/nova-3"]);
        assert!(Engine::Azure.values_of("region").contains(&"eastus"));
    }
}
