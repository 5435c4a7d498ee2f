//! What the Call Control definition accepts: each command body's fields, their
//! kinds and the closed lists of values ([`tables`]), held once and used by the
//! typed commands, by ivrx's configuration check and by the sandbox carrier,
//! which refuses what Telnyx refuses with the same error code and
//! `source.pointer`.
//!
//! Where the definition is a closed list (`Literal[…]` in the SDK) a value
//! outside it is refused; where it is open (a voice name with a pattern, a
//! free string) nothing is invented.

pub mod tables;

use serde_json::{Map, Value};

use super::commands::ValidationError;
use tables::*;

/// The kind of value a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any string.
    Str,
    /// A string that must be valid Base-64 (`client_state`).
    Base64,
    /// A voice: `male`, `female` or `Provider.Voice…` (an open pattern).
    Voice,
    /// `true` or `false`.
    Bool,
    /// An integer.
    Int,
    /// Any number.
    Number,
    /// One string of a closed list.
    OneOf(&'static [&'static str]),
    /// Exactly this string.
    Const(&'static str),
    /// One integer of a closed list.
    IntOneOf(&'static [i64]),
    /// A string or an integer (`loop`).
    StrOrInt,
    /// A string or a list of strings (`to` of `dial`).
    StrOrStrs,
    /// A list of strings.
    Strs,
    /// A list whose items are not checked here.
    Array,
    /// An object whose fields are not checked here.
    Object,
    /// `[{name, value}]`, both required strings.
    CustomHeaders,
    /// `[{name: "User-to-User", value}]`.
    SipHeaders,
    /// The `transcription_config` of `answer` and `dial` ([`TRANSCRIPTION_REQUEST`]).
    TranscriptionConfig,
    /// A `transcription_engine_config`, checked against its engine ([`ENGINE_CONFIGS`]).
    EngineConfig,
}

/// One field of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Its name on the wire.
    pub name: &'static str,
    /// What it takes.
    pub kind: Kind,
    /// Whether the body must have it.
    pub required: bool,
}

pub(crate) const fn opt(name: &'static str, kind: Kind) -> Field {
    Field { name, kind, required: false }
}

pub(crate) const fn req(name: &'static str, kind: Kind) -> Field {
    Field { name, kind, required: true }
}

/// Every body by name: the action path segments, `dial` (`POST /v2/calls`),
/// the conference commands and `transcription_config`.
pub static BODIES: &[(&str, &[Field])] = &[
    ("dial", DIAL),
    ("answer", ANSWER),
    ("speak", SPEAK),
    ("gather_using_speak", GATHER_USING_SPEAK),
    ("gather", GATHER),
    ("gather_stop", GATHER_STOP),
    ("transcription_start", TRANSCRIPTION_START),
    ("transcription_stop", TRANSCRIPTION_STOP),
    ("transfer", TRANSFER),
    ("bridge", BRIDGE),
    ("enqueue", ENQUEUE),
    ("leave_queue", LEAVE_QUEUE),
    ("hangup", HANGUP),
    ("playback_start", PLAYBACK_START),
    ("playback_stop", PLAYBACK_STOP),
    ("streaming_start", STREAMING_START),
    ("streaming_stop", STREAMING_STOP),
    ("record_start", RECORD_START),
    ("record_stop", RECORD_STOP),
    ("client_state_update", CLIENT_STATE_UPDATE),
    ("conference_create", CONFERENCE_CREATE),
    ("conference_join", CONFERENCE_JOIN),
    ("conference_leave", CONFERENCE_LEAVE),
    ("transcription_config", TRANSCRIPTION_REQUEST),
];

/// The `transcription_engine_config` shapes of each engine. Deepgram has one
/// per model, told apart by `transcription_model`.
pub static ENGINE_CONFIGS: &[(&str, &[&[Field]])] = &[
    ("Google", &[GOOGLE_CONFIG]),
    ("Telnyx", &[TELNYX_CONFIG]),
    ("Deepgram", &[DEEPGRAM_NOVA2_CONFIG, DEEPGRAM_NOVA3_CONFIG]),
    ("Azure", &[AZURE_CONFIG]),
    ("xAI", &[XAI_CONFIG]),
    ("AssemblyAI", &[ASSEMBLYAI_CONFIG]),
    ("Speechmatics", &[SPEECHMATICS_CONFIG]),
    ("Soniox", &[SONIOX_CONFIG]),
    ("Parakeet", &[PARAKEET_CONFIG]),
    ("Humain", &[HUMAIN_CONFIG]),
    ("Reson8", &[RESON8_CONFIG]),
    ("A", &[A_CONFIG]),
    ("B", &[B_CONFIG]),
];

/// The engine Telnyx uses when a request names none.
pub const DEFAULT_ENGINE: &str = "Google";

/// The fields of a body, by name (see [`BODIES`]).
pub fn body(name: &str) -> Option<&'static [Field]> {
    BODIES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The fields of a `bridge` body: the SDK marks `call_control_id` required,
/// and its own description says it "can't be used together with queue
/// parameter or video_room_id parameter", so with either of those it is not.
pub fn bridge_fields(body: &Map<String, Value>) -> Vec<Field> {
    let other = ["queue", "video_room_id"].iter().any(|f| body.get(*f).is_some_and(|v| !v.is_null()));
    BRIDGE.iter().map(|f| if other && f.name == "call_control_id" { opt(f.name, f.kind) } else { *f }).collect()
}

/// The field of that name.
pub fn field(fields: &[Field], name: &str) -> Option<Field> {
    fields.iter().find(|f| f.name == name).copied()
}

/// True for the voices Telnyx accepts: `male`, `female`, or `Provider.Voice…`.
pub fn is_valid_voice(voice: &str) -> bool {
    matches!(voice, "male" | "female")
        || voice.split_once('.').is_some_and(|(provider, rest)| {
            !provider.is_empty() && !rest.is_empty() && provider.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// Checks a body the way Telnyx does: required fields first (10004), then
/// each field's kind and value (90012). `at` is the JSON pointer of the body
/// (`""` at the top). Fields the table does not list are left alone.
pub fn check(fields: &[Field], body: &Map<String, Value>, at: &str) -> Result<(), ValidationError> {
    for f in fields.iter().filter(|f| f.required) {
        match body.get(f.name) {
            None | Some(Value::Null) => return Err(missing(at, f.name)),
            Some(Value::String(s)) if s.is_empty() => return Err(missing(at, f.name)),
            _ => {}
        }
    }
    for f in fields {
        match body.get(f.name) {
            None | Some(Value::Null) => {}
            Some(v) => check_value(f.kind, v, body, &format!("{at}/{}", f.name))?,
        }
    }
    Ok(())
}

fn check_value(kind: Kind, v: &Value, parent: &Map<String, Value>, at: &str) -> Result<(), ValidationError> {
    let bad = |what: &str| Err(invalid(at, what.to_string()));
    match kind {
        Kind::Str => str_of(v, at).map(drop),
        Kind::Base64 => {
            use base64::Engine as _;
            let s = str_of(v, at)?;
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(_) => Ok(()),
                Err(_) => bad("must be a valid Base-64 encoded string"),
            }
        }
        Kind::Voice => {
            let s = str_of(v, at)?;
            if is_valid_voice(s) {
                Ok(())
            } else {
                Err(invalid(
                    at,
                    format!("{s:?} is not a supported voice: use male, female or Provider.Voice, e.g. AWS.Polly.Joanna-Neural"),
                ))
            }
        }
        Kind::Bool if v.is_boolean() => Ok(()),
        Kind::Bool => bad("must be true or false"),
        Kind::Int if v.is_i64() || v.is_u64() => Ok(()),
        Kind::Int => bad("must be an integer"),
        Kind::Number if v.is_number() => Ok(()),
        Kind::Number => bad("must be a number"),
        Kind::OneOf(list) => {
            let s = str_of(v, at)?;
            if list.contains(&s) {
                Ok(())
            } else {
                Err(invalid(at, not_one_of(s, list)))
            }
        }
        Kind::Const(c) => match v.as_str() {
            Some(s) if s == c => Ok(()),
            _ => Err(invalid(at, format!("must be {c:?}"))),
        },
        Kind::IntOneOf(list) => match v.as_i64() {
            Some(n) if list.contains(&n) => Ok(()),
            _ => Err(invalid(at, format!("must be one of {list:?}"))),
        },
        Kind::StrOrInt if v.is_string() || v.is_i64() || v.is_u64() => Ok(()),
        Kind::StrOrInt => bad("must be a string or an integer"),
        Kind::StrOrStrs if v.is_string() => Ok(()),
        Kind::StrOrStrs | Kind::Strs => {
            let items = array_of(v, at)?;
            for (i, item) in items.iter().enumerate() {
                str_of(item, &format!("{at}/{i}"))?;
            }
            Ok(())
        }
        Kind::Array => array_of(v, at).map(drop),
        Kind::Object => object_of(v, at).map(drop),
        Kind::CustomHeaders | Kind::SipHeaders => {
            let name = if kind == Kind::SipHeaders { Kind::OneOf(SIP_HEADER_NAMES) } else { Kind::Str };
            let header = [req("name", name), req("value", Kind::Str)];
            for (i, item) in array_of(v, at)?.iter().enumerate() {
                let at = format!("{at}/{i}");
                check(&header, object_of(item, &at)?, &at)?;
            }
            Ok(())
        }
        Kind::TranscriptionConfig => check(TRANSCRIPTION_REQUEST, object_of(v, at)?, at),
        Kind::EngineConfig => {
            let engine = parent.get("transcription_engine").and_then(Value::as_str).unwrap_or(DEFAULT_ENGINE);
            check_engine_config(engine, v, at)
        }
    }
}

/// Names a `sip_headers` entry may have.
pub const SIP_HEADER_NAMES: &[&str] = &["User-to-User"];

/// Checks a `transcription_engine_config` against the shape of `engine`
/// (`at` is its pointer). An engine outside [`TRANSCRIPTION_ENGINES`] is the
/// caller's to refuse; here it has no shape and passes.
pub fn check_engine_config(engine: &str, config: &Value, at: &str) -> Result<(), ValidationError> {
    let body = object_of(config, at)?;
    let Some((_, shapes)) = ENGINE_CONFIGS.iter().find(|(e, _)| *e == engine) else { return Ok(()) };
    check(engine_shape(shapes, body, at)?, body, at)
}

/// The shape that applies to a config: the only one, or the one whose
/// `transcription_model` (Deepgram's discriminator) matches.
fn engine_shape(
    shapes: &'static [&'static [Field]],
    body: &Map<String, Value>,
    at: &str,
) -> Result<&'static [Field], ValidationError> {
    if let [one] = shapes {
        return Ok(one);
    }
    let models = models_of(shapes);
    let model = match body.get("transcription_model") {
        None | Some(Value::Null) => return Err(missing(at, "transcription_model")),
        Some(v) => str_of(v, &format!("{at}/transcription_model"))?,
    };
    match models.iter().position(|m| *m == model) {
        Some(i) => Ok(shapes[i]),
        None => Err(invalid(&format!("{at}/transcription_model"), not_one_of(model, &models))),
    }
}

/// The `transcription_model` values an engine takes (empty when it has none).
pub fn engine_models(engine: &str) -> Vec<&'static str> {
    engine_shapes(engine).map(models_of).unwrap_or_default()
}

fn models_of(shapes: &[&[Field]]) -> Vec<&'static str> {
    let mut models = Vec::new();
    for shape in shapes {
        match field(shape, "transcription_model").or_else(|| field(shape, "model")).map(|f| f.kind) {
            Some(Kind::Const(c)) => models.push(c),
            Some(Kind::OneOf(list)) => models.extend_from_slice(list),
            _ => {}
        }
    }
    models
}

/// The shapes of an engine's `transcription_engine_config`.
pub fn engine_shapes(engine: &str) -> Option<&'static [&'static [Field]]> {
    ENGINE_CONFIGS.iter().find(|(e, _)| *e == engine).map(|(_, s)| *s)
}

/// `"x" is not one of the 29 accepted values; closest: "a", "b"`.
pub fn not_one_of(value: &str, list: &[&str]) -> String {
    format!("{value:?} is not one of the {} accepted values; closest: {}", list.len(), suggest(value, list))
}

/// The [`closest`] values, quoted and comma-separated.
pub fn suggest(value: &str, list: &[&str]) -> String {
    closest(value, list).iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")
}

/// The values of `list` nearest to `value`: the same spelling but for case if
/// there is one; else those sharing its language or prefix (at most six);
/// else the three at the smallest edit distance.
pub fn closest<'a>(value: &str, list: &[&'a str]) -> Vec<&'a str> {
    let v = value.to_ascii_lowercase();
    let primary = |s: &str| s.split(['-', '_', '/', '.']).next().unwrap_or_default().to_string();
    let vp = primary(&v);
    let mut scored: Vec<(usize, usize, &str)> = list
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let cl = c.to_ascii_lowercase();
            let cp = primary(&cl);
            let score = if cl == v {
                0
            } else if (!vp.is_empty() && cp == vp) || (!cp.is_empty() && (v.starts_with(&cp) || cl.starts_with(&v))) {
                1
            } else {
                2 + edit_distance(&v, &cl)
            };
            (score, i, c)
        })
        .collect();
    scored.sort_unstable();
    let best = scored.first().map_or(0, |s| s.0);
    let (take, tier) = match best {
        0 => (usize::MAX, 0),
        1 => (6, 1),
        _ => (3, usize::MAX),
    };
    scored.into_iter().filter(|s| s.0 <= tier).take(take).map(|(_, _, c)| c).collect()
}

/// Levenshtein distance over bytes (the lists are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn str_of<'v>(v: &'v Value, at: &str) -> Result<&'v str, ValidationError> {
    v.as_str().ok_or_else(|| invalid(at, "must be a string".into()))
}

fn array_of<'v>(v: &'v Value, at: &str) -> Result<&'v Vec<Value>, ValidationError> {
    v.as_array().ok_or_else(|| invalid(at, "must be a list".into()))
}

fn object_of<'v>(v: &'v Value, at: &str) -> Result<&'v Map<String, Value>, ValidationError> {
    v.as_object().ok_or_else(|| invalid(at, "must be an object".into()))
}

fn missing(at: &str, name: &str) -> ValidationError {
    ValidationError::Missing { pointer: format!("{at}/{name}") }
}

fn invalid(at: &str, detail: String) -> ValidationError {
    ValidationError::Invalid { pointer: at.to_string(), detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(name: &str, body: Value) -> Result<(), ValidationError> {
        check(body_of(name), body.as_object().unwrap(), "")
    }

    fn body_of(name: &str) -> &'static [Field] {
        body(name).unwrap_or_else(|| panic!("no body {name}"))
    }

    fn pointer(r: Result<(), ValidationError>) -> String {
        match r {
            Err(ValidationError::Missing { pointer }) => format!("missing {pointer}"),
            Err(ValidationError::Invalid { pointer, .. }) => format!("invalid {pointer}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn closed_lists_refuse_outside_values_with_their_pointer() {
        let ok = json!({"payload": "hi", "voice": "female", "language": "en-US", "payload_type": "ssml"});
        run("speak", ok).unwrap();
        let cases = [
            ("speak", json!({"payload": "hi", "voice": "female", "language": "en"}), "invalid /language"),
            ("speak", json!({"payload": "hi", "voice": "female", "payload_type": "html"}), "invalid /payload_type"),
            ("speak", json!({"payload": "hi", "voice": "female", "service_level": "gold"}), "invalid /service_level"),
            ("speak", json!({"payload": "hi", "voice": "female", "target_legs": "all"}), "invalid /target_legs"),
            ("streaming_start", json!({"stream_track": "inbound"}), "invalid /stream_track"),
            ("streaming_start", json!({"stream_codec": "mp3"}), "invalid /stream_codec"),
            (
                "dial",
                json!({"connection_id": "1", "from": "+1", "to": "+2", "answering_machine_detection": "on"}),
                "invalid /answering_machine_detection",
            ),
            ("transcription_start", json!({"transcription_engine": "google"}), "invalid /transcription_engine"),
            ("answer", json!({"custom_headers": [{"name": "X-A"}]}), "missing /custom_headers/0/value"),
            ("answer", json!({"sip_headers": [{"name": "X-A", "value": "1"}]}), "invalid /sip_headers/0/name"),
            ("speak", json!({"voice": "female"}), "missing /payload"),
            ("record_start", json!({"format": "ogg", "channels": "single"}), "invalid /format"),
        ];
        for (name, body, want) in cases {
            assert_eq!(pointer(run(name, body.clone())), want, "{name} {body}");
        }
    }

    #[test]
    fn engine_configs_are_checked_against_their_engine() {
        let start = |engine: &str, config: Value| {
            run("transcription_start", json!({"transcription_engine": engine, "transcription_engine_config": config}))
        };
        start("Google", json!({"language": "en", "interim_results": true})).unwrap();
        start("Telnyx", json!({"language": "cy", "transcription_model": "openai/whisper-large-v3-turbo"})).unwrap();
        start(
            "Deepgram",
            json!({"transcription_engine": "deepgram/nova-3", "transcription_model": "deepgram/nova-3", "language": "en-US"}),
        )
        .unwrap();
        start("Azure", json!({"transcription_engine": "Azure", "region": "eastus", "language": "en"})).unwrap();
        let cases = [
            ("Google", json!({"language": "en-US"}), "invalid /transcription_engine_config/language"),
            ("Telnyx", json!({"language": "cmn"}), "invalid /transcription_engine_config/language"),
            ("Deepgram", json!({"language": "en"}), "missing /transcription_engine_config/transcription_model"),
            (
                "Deepgram",
                json!({"transcription_engine": "deepgram/nova-3", "transcription_model": "nova-3"}),
                "invalid /transcription_engine_config/transcription_model",
            ),
            (
                "Deepgram",
                json!({"transcription_model": "deepgram/nova-3"}),
                "missing /transcription_engine_config/transcription_engine",
            ),
            (
                "Deepgram",
                json!({"transcription_engine": "deepgram/nova-3", "transcription_model": "deepgram/nova-3", "language": "ja"}),
                "invalid /transcription_engine_config/language",
            ),
            ("Azure", json!({"transcription_engine": "Azure"}), "missing /transcription_engine_config/region"),
            (
                "Azure",
                json!({"region": "mars", "transcription_engine": "Azure"}),
                "invalid /transcription_engine_config/region",
            ),
        ];
        for (engine, config, want) in cases {
            assert_eq!(pointer(start(engine, config.clone())), want, "{engine} {config}");
        }
        // No engine named: Google's shape.
        let r = run("transcription_start", json!({"transcription_engine_config": {"language": "en-US"}}));
        assert_eq!(pointer(r), "invalid /transcription_engine_config/language");
        // Inside answer's transcription_config.
        let r = run(
            "answer",
            json!({"transcription": true, "transcription_config": {"transcription_engine": "Azure",
                   "transcription_engine_config": {"transcription_engine": "Azure"}}}),
        );
        assert_eq!(pointer(r), "missing /transcription_config/transcription_engine_config/region");
    }

    #[test]
    fn open_fields_stay_open() {
        run("speak", json!({"payload": "x", "voice": "Telnyx.KokoroTTS.af"})).unwrap();
        run("speak", json!({"payload": "x", "voice": "Azure.en-US-Ava:DragonHDLatestNeural"})).unwrap();
        run("playback_start", json!({"audio_url": "https://x/a.mp3", "target_legs": "anything", "loop": "infinity"}))
            .unwrap();
        run(
            "transcription_start",
            json!({"transcription_engine": "Soniox",
            "transcription_engine_config": {"transcription_engine": "Soniox", "language": "xx"}}),
        )
        .unwrap();
        assert!(!is_valid_voice("robot") && !is_valid_voice(".x"));
    }

    #[test]
    fn closest_values_come_first() {
        assert_eq!(closest("en", SPEAK_LANGUAGES), ["en-AU", "en-GB", "en-GB-WLS", "en-IN", "en-US"]);
        assert_eq!(closest("google", TRANSCRIPTION_ENGINES), ["Google"]);
        assert_eq!(closest("english", SPEAK_LANGUAGES)[0], "en-AU");
        assert_eq!(closest("eastus2", AZURE_REGIONS)[0], "eastus");
        assert_eq!(closest("deepgram/nova3", &engine_models("Deepgram")), ["deepgram/nova-2", "deepgram/nova-3"]);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let m = not_one_of("en", SPEAK_LANGUAGES);
        assert!(m.starts_with("\"en\" is not one of the 29 accepted values; closest: \"en-AU\""), "{m}");
    }

    #[test]
    fn every_engine_of_the_list_has_a_shape_and_every_shape_an_engine() {
        let engines: Vec<&str> = ENGINE_CONFIGS.iter().map(|(e, _)| *e).collect();
        let mut listed = TRANSCRIPTION_ENGINES.to_vec();
        listed.sort_unstable();
        let mut have = engines.clone();
        have.sort_unstable();
        assert_eq!(listed, have);
    }
}
