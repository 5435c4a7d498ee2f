//! The request bodies of the Call Control definition: every field of the
//! commands ivrx and its sandbox know, and every closed list of values, as the
//! official SDK's generated types (telnyx-python 4.176.0, `src/telnyx/types/`)
//! define them. The schema test (`tests/api_schema.rs`) compares these tables
//! with the SDK field by field, so a change in the definition shows up there.

use super::Kind::*;
use super::{opt, req, Field};

/// `answering_machine_detection` of `dial` and `transfer`.
pub const ANSWERING_MACHINE_DETECTION_MODES: &[&str] =
    &["premium", "detect", "detect_beep", "detect_words", "greeting_end", "disabled"];

/// `media_encryption` of `dial` and `transfer`.
pub const MEDIA_ENCRYPTIONS: &[&str] = &["disabled", "SRTP", "DTLS"];

/// `privacy` of `dial` and `transfer`.
pub const PRIVACY_MODES: &[&str] = &["id", "none"];

/// `channels` of `record_start`; `record_channels` of `dial`, `answer`, `transfer`, `bridge`.
pub const RECORD_CHANNELS: &[&str] = &["single", "dual"];

/// `format` of `record_start`; `record_format` of `dial`, `answer`, `transfer`, `bridge`.
pub const RECORD_FORMATS: &[&str] = &["wav", "mp3"];

/// `recording_track` of `record_start`; `record_track` elsewhere.
pub const RECORD_TRACKS: &[&str] = &["both", "inbound", "outbound"];

/// `sip_region` of `dial` and `transfer`.
pub const SIP_REGIONS: &[&str] = &["US", "Europe", "Canada", "Australia", "Middle East"];

/// `sip_transport_protocol` of `dial` and `transfer`.
pub const SIP_TRANSPORT_PROTOCOLS: &[&str] = &["UDP", "TCP", "TLS"];

/// `stream_bidirectional_codec`.
pub const BIDIRECTIONAL_CODECS: &[&str] = &["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"];

/// `stream_bidirectional_mode`.
pub const BIDIRECTIONAL_MODES: &[&str] = &["mp3", "rtp"];

/// `stream_bidirectional_target_legs`.
pub const BIDIRECTIONAL_TARGET_LEGS: &[&str] = &["both", "self", "opposite"];

/// `stream_codec` (`StreamCodec`).
pub const STREAM_CODECS: &[&str] = &["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16", "default"];

/// `stream_track` of `dial`, `answer` and `streaming_start`.
pub const STREAM_TRACKS: &[&str] = &["inbound_track", "outbound_track", "both_tracks"];

/// `supervisor_role` of `dial`.
pub const DIAL_SUPERVISOR_ROLES: &[&str] = &["barge", "whisper", "monitor"];

/// `webhook_url_method` and `webhook_urls_method`.
pub const HTTP_METHODS: &[&str] = &["POST", "GET"];

/// `language` of `speak` and `gather_using_speak`: the languages Telnyx speaks.
pub const SPEAK_LANGUAGES: &[&str] = &[
    "arb",
    "cmn-CN",
    "cy-GB",
    "da-DK",
    "de-DE",
    "en-AU",
    "en-GB",
    "en-GB-WLS",
    "en-IN",
    "en-US",
    "es-ES",
    "es-MX",
    "es-US",
    "fr-CA",
    "fr-FR",
    "hi-IN",
    "is-IS",
    "it-IT",
    "ja-JP",
    "ko-KR",
    "nb-NO",
    "nl-NL",
    "pl-PL",
    "pt-BR",
    "pt-PT",
    "ro-RO",
    "ru-RU",
    "sv-SE",
    "tr-TR",
];

/// `payload_type` of `speak` and `gather_using_speak`.
pub const PAYLOAD_TYPES: &[&str] = &["text", "ssml"];

/// `service_level` of `speak` and `gather_using_speak`.
pub const SERVICE_LEVELS: &[&str] = &["basic", "premium"];

/// `target_legs` of `speak`.
pub const SPEAK_TARGET_LEGS: &[&str] = &["self", "opposite", "both"];

/// `transcription_engine` of `transcription_start` (`A` and `B` are the legacy names of Google and Telnyx).
pub const TRANSCRIPTION_ENGINES: &[&str] = &[
    "Google",
    "Telnyx",
    "Deepgram",
    "Azure",
    "xAI",
    "AssemblyAI",
    "Speechmatics",
    "Soniox",
    "Parakeet",
    "Humain",
    "Reson8",
    "A",
    "B",
];

/// `mute_dtmf` of `transfer` and `bridge`.
pub const MUTE_DTMF_MODES: &[&str] = &["none", "both", "self", "opposite"];

/// `ringtone` of `bridge`.
pub const RINGTONES: &[&str] = &[
    "at", "au", "be", "bg", "br", "ch", "cl", "cn", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr", "hu", "il", "in",
    "it", "jp", "lt", "mx", "my", "nl", "no", "nz", "ph", "pl", "pt", "ru", "se", "sg", "th", "tw", "uk", "us-old",
    "us", "ve", "za",
];

/// `audio_type` of `playback_start`.
pub const AUDIO_TYPES: &[&str] = &["mp3", "wav"];

/// `transcription_engine` of `record_start`.
pub const RECORDING_TRANSCRIPTION_ENGINES: &[&str] = &["A", "B", "deepgram/nova-3"];

/// `transcription_language` of `record_start`.
pub const RECORDING_TRANSCRIPTION_LANGUAGES: &[&str] = &[
    "af",
    "af-ZA",
    "am",
    "am-ET",
    "ar",
    "ar-AE",
    "ar-BH",
    "ar-DZ",
    "ar-EG",
    "ar-IL",
    "ar-IQ",
    "ar-JO",
    "ar-KW",
    "ar-LB",
    "ar-MA",
    "ar-MR",
    "ar-OM",
    "ar-PS",
    "ar-QA",
    "ar-SA",
    "ar-TN",
    "ar-YE",
    "as",
    "auto_detect",
    "az",
    "az-AZ",
    "ba",
    "be",
    "bg",
    "bg-BG",
    "bn",
    "bn-BD",
    "bn-IN",
    "bo",
    "br",
    "bs",
    "bs-BA",
    "ca",
    "ca-ES",
    "cs",
    "cs-CZ",
    "cy",
    "da",
    "da-DK",
    "de",
    "de-AT",
    "de-CH",
    "de-DE",
    "el",
    "el-GR",
    "en",
    "en-AU",
    "en-CA",
    "en-GB",
    "en-GH",
    "en-HK",
    "en-IE",
    "en-IN",
    "en-KE",
    "en-NG",
    "en-NZ",
    "en-PH",
    "en-PK",
    "en-SG",
    "en-TZ",
    "en-US",
    "en-ZA",
    "es",
    "es-419",
    "es-AR",
    "es-BO",
    "es-CL",
    "es-CO",
    "es-CR",
    "es-DO",
    "es-EC",
    "es-ES",
    "es-GT",
    "es-HN",
    "es-MX",
    "es-NI",
    "es-PA",
    "es-PE",
    "es-PR",
    "es-PY",
    "es-SV",
    "es-US",
    "es-UY",
    "es-VE",
    "et",
    "et-EE",
    "eu",
    "eu-ES",
    "fa",
    "fa-IR",
    "fi",
    "fi-FI",
    "fil-PH",
    "fo",
    "fr",
    "fr-BE",
    "fr-CA",
    "fr-CH",
    "fr-FR",
    "gl",
    "gl-ES",
    "gu",
    "gu-IN",
    "ha",
    "haw",
    "he",
    "hi",
    "hi-IN",
    "hr",
    "hr-HR",
    "ht",
    "hu",
    "hu-HU",
    "hy",
    "hy-AM",
    "id",
    "id-ID",
    "is",
    "is-IS",
    "it",
    "it-CH",
    "it-IT",
    "iw-IL",
    "ja",
    "ja-JP",
    "jv-ID",
    "jw",
    "ka",
    "ka-GE",
    "kk",
    "kk-KZ",
    "km",
    "km-KH",
    "kn",
    "kn-IN",
    "ko",
    "ko-KR",
    "la",
    "lb",
    "ln",
    "lo",
    "lo-LA",
    "lt",
    "lt-LT",
    "lv",
    "lv-LV",
    "mg",
    "mi",
    "mk",
    "mk-MK",
    "ml",
    "ml-IN",
    "mn",
    "mn-MN",
    "mr",
    "mr-IN",
    "ms",
    "ms-MY",
    "mt",
    "my",
    "my-MM",
    "ne",
    "ne-NP",
    "nl",
    "nl-BE",
    "nl-NL",
    "nn",
    "no",
    "no-NO",
    "oc",
    "pa",
    "pa-Guru-IN",
    "pl",
    "pl-PL",
    "ps",
    "pt",
    "pt-BR",
    "pt-PT",
    "ro",
    "ro-RO",
    "ru",
    "ru-RU",
    "rw-RW",
    "sa",
    "sd",
    "si",
    "si-LK",
    "sk",
    "sk-SK",
    "sl",
    "sl-SI",
    "sn",
    "so",
    "sq",
    "sq-AL",
    "sr",
    "sr-RS",
    "ss-latn-za",
    "st-ZA",
    "su",
    "su-ID",
    "sv",
    "sv-SE",
    "sw",
    "sw-KE",
    "sw-TZ",
    "ta",
    "ta-IN",
    "ta-LK",
    "ta-MY",
    "ta-SG",
    "te",
    "te-IN",
    "tg",
    "th",
    "th-TH",
    "tk",
    "tl",
    "tn-latn-za",
    "tr",
    "tr-TR",
    "ts-ZA",
    "tt",
    "uk",
    "uk-UA",
    "ur",
    "ur-IN",
    "ur-PK",
    "uz",
    "uz-UZ",
    "ve-ZA",
    "vi",
    "vi-VN",
    "xh-ZA",
    "yi",
    "yo",
    "yue-Hant-HK",
    "zh",
    "zh-TW",
    "zu-ZA",
];

/// `beep_enabled` of the conference commands.
pub const BEEPS: &[&str] = &["always", "never", "on_enter", "on_exit"];

/// `region` of the conference commands.
pub const CONFERENCE_REGIONS: &[&str] = &["Australia", "Europe", "Middle East", "US"];

/// `supervisor_role` of `conference join`.
pub const CONFERENCE_SUPERVISOR_ROLES: &[&str] = &["barge", "monitor", "none", "whisper"];

/// Google (and legacy `A`) transcription languages (`GoogleTranscriptionLanguage`).
pub const GOOGLE_LANGUAGES: &[&str] = &[
    "af", "sq", "am", "ar", "hy", "az", "eu", "bn", "bs", "bg", "my", "ca", "yue", "zh", "hr", "cs", "da", "nl", "en",
    "et", "fil", "fi", "fr", "gl", "ka", "de", "el", "gu", "iw", "hi", "hu", "is", "id", "it", "ja", "jv", "kn", "kk",
    "km", "ko", "lo", "lv", "lt", "mk", "ms", "ml", "mr", "mn", "ne", "no", "fa", "pl", "pt", "pa", "ro", "ru", "rw",
    "sr", "si", "sk", "sl", "ss", "st", "es", "su", "sw", "sv", "ta", "te", "th", "tn", "tr", "ts", "uk", "ur", "uz",
    "ve", "vi", "xh", "zu",
];

/// Google (and legacy `A`) transcription models.
pub const GOOGLE_MODELS: &[&str] = &[
    "latest_long",
    "latest_short",
    "command_and_search",
    "phone_call",
    "video",
    "default",
    "medical_conversation",
    "medical_dictation",
];

/// Telnyx (and legacy `B`) transcription languages (`TelnyxTranscriptionLanguage`).
pub const TELNYX_LANGUAGES: &[&str] = &[
    "en",
    "zh",
    "de",
    "es",
    "ru",
    "ko",
    "fr",
    "ja",
    "pt",
    "tr",
    "pl",
    "ca",
    "nl",
    "ar",
    "sv",
    "it",
    "id",
    "hi",
    "fi",
    "vi",
    "he",
    "uk",
    "el",
    "ms",
    "cs",
    "ro",
    "da",
    "hu",
    "ta",
    "no",
    "th",
    "ur",
    "hr",
    "bg",
    "lt",
    "la",
    "mi",
    "ml",
    "cy",
    "sk",
    "te",
    "fa",
    "lv",
    "bn",
    "sr",
    "az",
    "sl",
    "kn",
    "et",
    "mk",
    "br",
    "eu",
    "is",
    "hy",
    "ne",
    "mn",
    "bs",
    "kk",
    "sq",
    "sw",
    "gl",
    "mr",
    "pa",
    "si",
    "km",
    "sn",
    "yo",
    "so",
    "af",
    "oc",
    "ka",
    "be",
    "tg",
    "sd",
    "gu",
    "am",
    "yi",
    "lo",
    "uz",
    "fo",
    "ht",
    "ps",
    "tk",
    "nn",
    "mt",
    "sa",
    "lb",
    "my",
    "bo",
    "tl",
    "mg",
    "as",
    "tt",
    "haw",
    "ln",
    "ha",
    "ba",
    "jw",
    "su",
    "auto_detect",
];

/// Telnyx (and legacy `B`) transcription models.
pub const TELNYX_MODELS: &[&str] = &["openai/whisper-tiny", "openai/whisper-large-v3-turbo"];

/// Deepgram nova-2 transcription languages.
pub const DEEPGRAM_NOVA2_LANGUAGES: &[&str] = &[
    "bg",
    "ca",
    "zh-CN",
    "zh-Hans",
    "zh-TW",
    "zh-Hant",
    "zh-HK",
    "cs",
    "da-DK",
    "nl-BE",
    "en-US",
    "en-AU",
    "en-GB",
    "en-NZ",
    "en-IN",
    "et",
    "fi",
    "fr",
    "fr-CA",
    "de-CH",
    "el",
    "hi",
    "hu",
    "id",
    "it",
    "ja",
    "ko-KR",
    "lv",
    "lt",
    "ms",
    "no",
    "pl",
    "pt-BR",
    "pt-PT",
    "ro",
    "ru",
    "sk",
    "es-419",
    "sv-SE",
    "th-TH",
    "tr",
    "uk",
    "vi",
    "auto_detect",
];

/// Deepgram nova-3 transcription languages.
pub const DEEPGRAM_NOVA3_LANGUAGES: &[&str] = &[
    "en-US",
    "en-AU",
    "en-GB",
    "en-IN",
    "en-NZ",
    "de",
    "nl",
    "sv-SE",
    "da-DK",
    "es",
    "es-419",
    "fr",
    "fr-CA",
    "pt-BR",
    "pt-PT",
    "auto_detect",
];

/// Azure transcription regions.
pub const AZURE_REGIONS: &[&str] =
    &["australiaeast", "centralindia", "eastus", "northcentralus", "westeurope", "westus2"];

/// Azure transcription languages.
pub const AZURE_LANGUAGES: &[&str] = &[
    "af", "am", "ar", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr",
    "ga", "gl", "gu", "he", "hi", "hr", "hu", "hy", "id", "is", "it", "ja", "ka", "kk", "km", "kn", "ko", "lo", "lt",
    "lv", "mk", "ml", "mn", "mr", "ms", "mt", "my", "nb", "ne", "nl", "pl", "ps", "pt", "ro", "ru", "si", "sk", "sl",
    "so", "sq", "sr", "sv", "sw", "ta", "te", "th", "tr", "uk", "ur", "uz", "vi", "wuu", "yue", "zh", "zu", "auto",
];

/// xAI transcription languages.
pub const XAI_LANGUAGES: &[&str] = &[
    "ar", "cs", "da", "de", "en", "es", "fa", "fil", "fr", "hi", "id", "it", "ja", "ko", "mk", "ms", "nl", "pl", "pt",
    "ro", "ru", "sv", "th", "tr", "vi",
];

/// Speechmatics transcription languages.
pub const SPEECHMATICS_LANGUAGES: &[&str] = &[
    "en",
    "ba",
    "eu",
    "gl",
    "ga",
    "mt",
    "mn",
    "sw",
    "ug",
    "cy",
    "ar_en",
    "cmn_en",
    "en_ms",
    "en_ta",
    "tl",
    "es-bilingual-en",
    "cmn_en_ms_ta",
];

/// Humain transcription languages.
pub const HUMAIN_LANGUAGES: &[&str] = &["ar", "en", "codeswitch", "auto"];

/// Reson8 transcription languages.
pub const RESON8_LANGUAGES: &[&str] = &["auto", "nl", "en", "fr", "fy", "de", "it", "pl", "pt", "es", "sv"];

/// `POST /v2/calls`: `CallDialParams` (call_dial_params.py).
pub static DIAL: &[Field] = &[
    req("connection_id", Str),
    req("from", Str),
    req("to", StrOrStrs),
    opt("answering_machine_detection", OneOf(ANSWERING_MACHINE_DETECTION_MODES)),
    opt("answering_machine_detection_config", Object),
    opt("assistant", Object),
    opt("audio_url", Str),
    opt("billing_group_id", Str),
    opt("bridge_intent", Bool),
    opt("bridge_on_answer", Bool),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("conference_config", Object),
    opt("conversation_relay_config", Object),
    opt("custom_headers", CustomHeaders),
    opt("deepfake_detection", Object),
    opt("dialogflow_config", Object),
    opt("enable_dialogflow", Bool),
    opt("from_display_name", Str),
    opt("link_to", Str),
    opt("media_encryption", OneOf(MEDIA_ENCRYPTIONS)),
    opt("media_name", Str),
    opt("park_after_unbridge", Str),
    opt("preferred_codecs", Str),
    opt("prevent_double_bridge", Bool),
    opt("privacy", OneOf(PRIVACY_MODES)),
    opt("record", Const("record-from-answer")),
    opt("record_channels", OneOf(RECORD_CHANNELS)),
    opt("record_custom_file_name", Str),
    opt("record_format", OneOf(RECORD_FORMATS)),
    opt("record_max_length", Int),
    opt("record_timeout_secs", Int),
    opt("record_track", OneOf(RECORD_TRACKS)),
    opt("record_trim", Const("trim-silence")),
    opt("retry_on_timeout", Bool),
    opt("route_to_mobile", Bool),
    opt("send_digits_on_answer", Str),
    opt("send_silence_when_idle", Bool),
    opt("sip_auth_password", Str),
    opt("sip_auth_username", Str),
    opt("sip_headers", SipHeaders),
    opt("sip_region", OneOf(SIP_REGIONS)),
    opt("sip_transport_protocol", OneOf(SIP_TRANSPORT_PROTOCOLS)),
    opt("sound_modifications", Object),
    opt("stream_auth_token", Str),
    opt("stream_bidirectional_codec", OneOf(BIDIRECTIONAL_CODECS)),
    opt("stream_bidirectional_mode", OneOf(BIDIRECTIONAL_MODES)),
    opt("stream_bidirectional_sampling_rate", IntOneOf(&[8000, 16000, 22050, 24000, 48000])),
    opt("stream_bidirectional_target_legs", OneOf(BIDIRECTIONAL_TARGET_LEGS)),
    opt("stream_codec", OneOf(STREAM_CODECS)),
    opt("stream_establish_before_call_originate", Bool),
    opt("stream_track", OneOf(STREAM_TRACKS)),
    opt("stream_url", Str),
    opt("supervise_call_control_id", Str),
    opt("supervisor_role", OneOf(DIAL_SUPERVISOR_ROLES)),
    opt("time_limit_secs", Int),
    opt("timeout_secs", Int),
    opt("transcription", Bool),
    opt("transcription_config", TranscriptionConfig),
    opt("webhook_retries_policies", Object),
    opt("webhook_url", Str),
    opt("webhook_url_method", OneOf(HTTP_METHODS)),
    opt("webhook_urls", Object),
    opt("webhook_urls_method", OneOf(HTTP_METHODS)),
];

/// `answer`: `ActionAnswerParams` (action_answer_params.py).
pub static ANSWER: &[Field] = &[
    opt("assistant", Object),
    opt("billing_group_id", Str),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("conversation_relay_config", Object),
    opt("custom_headers", CustomHeaders),
    opt("deepfake_detection", Object),
    opt("preferred_codecs", Const("G722,PCMU,PCMA,G729,OPUS,VP8,H264")),
    opt("record", Const("record-from-answer")),
    opt("record_channels", OneOf(RECORD_CHANNELS)),
    opt("record_custom_file_name", Str),
    opt("record_format", OneOf(RECORD_FORMATS)),
    opt("record_max_length", Int),
    opt("record_timeout_secs", Int),
    opt("record_track", OneOf(RECORD_TRACKS)),
    opt("record_trim", Const("trim-silence")),
    opt("send_silence_when_idle", Bool),
    opt("sip_headers", SipHeaders),
    opt("sound_modifications", Object),
    opt("stream_bidirectional_codec", OneOf(BIDIRECTIONAL_CODECS)),
    opt("stream_bidirectional_mode", OneOf(BIDIRECTIONAL_MODES)),
    opt("stream_bidirectional_target_legs", OneOf(BIDIRECTIONAL_TARGET_LEGS)),
    opt("stream_codec", OneOf(STREAM_CODECS)),
    opt("stream_track", OneOf(STREAM_TRACKS)),
    opt("stream_url", Str),
    opt("transcription", Bool),
    opt("transcription_config", TranscriptionConfig),
    opt("webhook_retries_policies", Object),
    opt("webhook_url", Str),
    opt("webhook_url_method", OneOf(HTTP_METHODS)),
    opt("webhook_urls", Object),
    opt("webhook_urls_method", OneOf(HTTP_METHODS)),
];

/// `speak`: `ActionSpeakParams` (action_speak_params.py).
pub static SPEAK: &[Field] = &[
    req("payload", Str),
    req("voice", Voice),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("language", OneOf(SPEAK_LANGUAGES)),
    opt("loop", StrOrInt),
    opt("payload_type", OneOf(PAYLOAD_TYPES)),
    opt("service_level", OneOf(SERVICE_LEVELS)),
    opt("stop", Str),
    opt("target_legs", OneOf(SPEAK_TARGET_LEGS)),
    opt("voice_settings", Object),
];

/// `gather_using_speak`: `ActionGatherUsingSpeakParams` (action_gather_using_speak_params.py).
pub static GATHER_USING_SPEAK: &[Field] = &[
    req("payload", Str),
    req("voice", Voice),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("inter_digit_timeout_millis", Int),
    opt("invalid_payload", Str),
    opt("language", OneOf(SPEAK_LANGUAGES)),
    opt("maximum_digits", Int),
    opt("maximum_tries", Int),
    opt("minimum_digits", Int),
    opt("payload_type", OneOf(PAYLOAD_TYPES)),
    opt("service_level", OneOf(SERVICE_LEVELS)),
    opt("terminating_digit", Str),
    opt("timeout_millis", Int),
    opt("valid_digits", Str),
    opt("voice_settings", Object),
];

/// `gather`: `ActionGatherParams` (action_gather_params.py).
pub static GATHER: &[Field] = &[
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("gather_id", Str),
    opt("initial_timeout_millis", Int),
    opt("inter_digit_timeout_millis", Int),
    opt("maximum_digits", Int),
    opt("minimum_digits", Int),
    opt("terminating_digit", Str),
    opt("timeout_millis", Int),
    opt("valid_digits", Str),
];

/// `gather_stop`: `ActionStopGatherParams` (action_stop_gather_params.py).
pub static GATHER_STOP: &[Field] = &[opt("client_state", Base64), opt("command_id", Str)];

/// `transcription_start`: `ActionStartTranscriptionParams` (action_start_transcription_params.py).
pub static TRANSCRIPTION_START: &[Field] = &[
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("transcription_engine", OneOf(TRANSCRIPTION_ENGINES)),
    opt("transcription_engine_config", EngineConfig),
    opt("transcription_tracks", Str),
];

/// `transcription_stop`: `ActionStopTranscriptionParams` (action_stop_transcription_params.py).
pub static TRANSCRIPTION_STOP: &[Field] = &[opt("client_state", Base64), opt("command_id", Str)];

/// `transfer`: `ActionTransferParams` (action_transfer_params.py).
pub static TRANSFER: &[Field] = &[
    req("to", Str),
    opt("answering_machine_detection", OneOf(ANSWERING_MACHINE_DETECTION_MODES)),
    opt("answering_machine_detection_config", Object),
    opt("audio_url", Str),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("custom_headers", CustomHeaders),
    opt("early_media", Bool),
    opt("from", Str),
    opt("from_display_name", Str),
    opt("media_encryption", OneOf(MEDIA_ENCRYPTIONS)),
    opt("media_name", Str),
    opt("mute_dtmf", OneOf(MUTE_DTMF_MODES)),
    opt("park_after_unbridge", Str),
    opt("preferred_codecs", Str),
    opt("privacy", OneOf(PRIVACY_MODES)),
    opt("record", Const("record-from-answer")),
    opt("record_channels", OneOf(RECORD_CHANNELS)),
    opt("record_custom_file_name", Str),
    opt("record_format", OneOf(RECORD_FORMATS)),
    opt("record_max_length", Int),
    opt("record_timeout_secs", Int),
    opt("record_track", OneOf(RECORD_TRACKS)),
    opt("record_trim", Const("trim-silence")),
    opt("route_to_mobile", Bool),
    opt("send_digits_on_answer", Str),
    opt("sip_auth_password", Str),
    opt("sip_auth_username", Str),
    opt("sip_headers", SipHeaders),
    opt("sip_region", OneOf(SIP_REGIONS)),
    opt("sip_transport_protocol", OneOf(SIP_TRANSPORT_PROTOCOLS)),
    opt("sound_modifications", Object),
    opt("target_leg_client_state", Base64),
    opt("time_limit_secs", Int),
    opt("timeout_secs", Int),
    opt("webhook_retries_policies", Object),
    opt("webhook_url", Str),
    opt("webhook_url_method", OneOf(HTTP_METHODS)),
    opt("webhook_urls", Object),
    opt("webhook_urls_method", OneOf(HTTP_METHODS)),
];

/// `bridge`: `ActionBridgeParams` (action_bridge_params.py).
pub static BRIDGE: &[Field] = &[
    req("call_control_id", Str),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("hold_after_unbridge", Bool),
    opt("mute_dtmf", OneOf(MUTE_DTMF_MODES)),
    opt("park_after_unbridge", Str),
    opt("play_ringtone", Bool),
    opt("prevent_double_bridge", Bool),
    opt("queue", Str),
    opt("record", Const("record-from-answer")),
    opt("record_channels", OneOf(RECORD_CHANNELS)),
    opt("record_custom_file_name", Str),
    opt("record_format", OneOf(RECORD_FORMATS)),
    opt("record_max_length", Int),
    opt("record_timeout_secs", Int),
    opt("record_track", OneOf(RECORD_TRACKS)),
    opt("record_trim", Const("trim-silence")),
    opt("ringtone", OneOf(RINGTONES)),
    opt("video_room_context", Str),
    opt("video_room_id", Str),
];

/// `enqueue`: `ActionEnqueueParams` (action_enqueue_params.py).
pub static ENQUEUE: &[Field] = &[
    req("queue_name", Str),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("keep_after_hangup", Bool),
    opt("max_size", Int),
    opt("max_wait_time_secs", Int),
];

/// `leave_queue`: `ActionLeaveQueueParams` (action_leave_queue_params.py).
pub static LEAVE_QUEUE: &[Field] = &[opt("client_state", Base64), opt("command_id", Str)];

/// `hangup`: `ActionHangupParams` (action_hangup_params.py).
pub static HANGUP: &[Field] =
    &[opt("client_state", Base64), opt("command_id", Str), opt("custom_headers", CustomHeaders)];

/// `playback_start`: `ActionStartPlaybackParams` (action_start_playback_params.py).
pub static PLAYBACK_START: &[Field] = &[
    opt("audio_type", OneOf(AUDIO_TYPES)),
    opt("audio_url", Str),
    opt("cache_audio", Bool),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("loop", StrOrInt),
    opt("media_name", Str),
    opt("overlay", Bool),
    opt("playback_content", Str),
    opt("stop", Str),
    opt("target_legs", Str),
];

/// `playback_stop`: `ActionStopPlaybackParams` (action_stop_playback_params.py).
pub static PLAYBACK_STOP: &[Field] =
    &[opt("client_state", Base64), opt("command_id", Str), opt("overlay", Bool), opt("stop", Str)];

/// `streaming_start`: `ActionStartStreamingParams` (action_start_streaming_params.py).
pub static STREAMING_START: &[Field] = &[
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("custom_parameters", Array),
    opt("dialogflow_config", Object),
    opt("enable_dialogflow", Bool),
    opt("stream_auth_token", Str),
    opt("stream_bidirectional_codec", OneOf(BIDIRECTIONAL_CODECS)),
    opt("stream_bidirectional_mode", OneOf(BIDIRECTIONAL_MODES)),
    opt("stream_bidirectional_sampling_rate", IntOneOf(&[8000, 16000, 22050, 24000, 48000])),
    opt("stream_bidirectional_target_legs", OneOf(BIDIRECTIONAL_TARGET_LEGS)),
    opt("stream_codec", OneOf(STREAM_CODECS)),
    opt("stream_track", OneOf(STREAM_TRACKS)),
    opt("stream_url", Str),
];

/// `streaming_stop`: `ActionStopStreamingParams` (action_stop_streaming_params.py).
pub static STREAMING_STOP: &[Field] = &[opt("client_state", Base64), opt("command_id", Str), opt("stream_id", Str)];

/// `record_start`: `ActionStartRecordingParams` (action_start_recording_params.py).
pub static RECORD_START: &[Field] = &[
    req("channels", OneOf(RECORD_CHANNELS)),
    req("format", OneOf(RECORD_FORMATS)),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("custom_file_name", Str),
    opt("max_length", Int),
    opt("play_beep", Bool),
    opt("recording_track", OneOf(RECORD_TRACKS)),
    opt("timeout_secs", Int),
    opt("transcription", Bool),
    opt("transcription_engine", OneOf(RECORDING_TRANSCRIPTION_ENGINES)),
    opt("transcription_language", OneOf(RECORDING_TRANSCRIPTION_LANGUAGES)),
    opt("transcription_max_speaker_count", Int),
    opt("transcription_min_speaker_count", Int),
    opt("transcription_profanity_filter", Bool),
    opt("transcription_speaker_diarization", Bool),
    opt("trim", Const("trim-silence")),
];

/// `record_stop`: `ActionStopRecordingParams` (action_stop_recording_params.py).
pub static RECORD_STOP: &[Field] = &[opt("client_state", Base64), opt("command_id", Str), opt("recording_id", Str)];

/// `client_state_update`: `ActionUpdateClientStateParams` (action_update_client_state_params.py).
pub static CLIENT_STATE_UPDATE: &[Field] = &[req("client_state", Base64)];

/// `POST /v2/conferences`: `ConferenceCreateParams` (conference_create_params.py).
pub static CONFERENCE_CREATE: &[Field] = &[
    req("call_control_id", Str),
    req("name", Str),
    opt("beep_enabled", OneOf(BEEPS)),
    opt("client_state", Base64),
    opt("comfort_noise", Bool),
    opt("command_id", Str),
    opt("duration_minutes", Int),
    opt("hold_audio_url", Str),
    opt("hold_media_name", Str),
    opt("max_participants", Int),
    opt("region", OneOf(CONFERENCE_REGIONS)),
    opt("start_conference_on_create", Bool),
];

/// `POST /v2/conferences/{id}/actions/join`: `ActionJoinParams` (action_join_params.py).
pub static CONFERENCE_JOIN: &[Field] = &[
    req("call_control_id", Str),
    opt("beep_enabled", OneOf(BEEPS)),
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("end_conference_on_exit", Bool),
    opt("hold", Bool),
    opt("hold_audio_url", Str),
    opt("hold_media_name", Str),
    opt("mute", Bool),
    opt("region", OneOf(CONFERENCE_REGIONS)),
    opt("soft_end_conference_on_exit", Bool),
    opt("start_conference_on_enter", Bool),
    opt("supervisor_role", OneOf(CONFERENCE_SUPERVISOR_ROLES)),
    opt("whisper_call_control_ids", Strs),
];

/// `POST /v2/conferences/{id}/actions/leave`: `ActionLeaveParams` (action_leave_params.py).
pub static CONFERENCE_LEAVE: &[Field] = &[
    req("call_control_id", Str),
    opt("beep_enabled", OneOf(BEEPS)),
    opt("command_id", Str),
    opt("region", OneOf(CONFERENCE_REGIONS)),
];

/// `transcription_config` of `answer` and `dial`: `TranscriptionStartRequestParam` (transcription_start_request_param.py).
pub static TRANSCRIPTION_REQUEST: &[Field] = &[
    opt("client_state", Base64),
    opt("command_id", Str),
    opt("transcription_engine", OneOf(TRANSCRIPTION_ENGINES)),
    opt("transcription_engine_config", EngineConfig),
    opt("transcription_tracks", Str),
];

/// `transcription_engine_config` for `Google`: `TranscriptionEngineGoogleConfigParam` (transcription_engine_google_config_param.py).
pub static GOOGLE_CONFIG: &[Field] = &[
    opt("enable_speaker_diarization", Bool),
    opt("hints", Strs),
    opt("interim_results", Bool),
    opt("language", OneOf(GOOGLE_LANGUAGES)),
    opt("max_speaker_count", Int),
    opt("min_speaker_count", Int),
    opt("model", OneOf(GOOGLE_MODELS)),
    opt("profanity_filter", Bool),
    opt("speech_context", Array),
    opt("transcription_engine", Const("Google")),
    opt("use_enhanced", Bool),
];

/// `transcription_engine_config` for `Telnyx`: `TranscriptionEngineTelnyxConfigParam` (transcription_engine_telnyx_config_param.py).
pub static TELNYX_CONFIG: &[Field] = &[
    opt("language", OneOf(TELNYX_LANGUAGES)),
    opt("transcription_engine", Const("Telnyx")),
    opt("transcription_model", OneOf(TELNYX_MODELS)),
];

/// `transcription_engine_config` for `deepgram/nova-2`: `DeepgramNova2ConfigParam` (deepgram_nova2_config_param.py).
pub static DEEPGRAM_NOVA2_CONFIG: &[Field] = &[
    req("transcription_engine", Const("deepgram/nova-2")),
    req("transcription_model", Const("deepgram/nova-2")),
    opt("hints", Strs),
    opt("interim_results", Bool),
    opt("keywords_boosting", Object),
    opt("language", OneOf(DEEPGRAM_NOVA2_LANGUAGES)),
    opt("smart_format", Bool),
    opt("utterance_end_ms", Int),
];

/// `transcription_engine_config` for `deepgram/nova-3`: `DeepgramNova3ConfigParam` (deepgram_nova3_config_param.py).
pub static DEEPGRAM_NOVA3_CONFIG: &[Field] = &[
    req("transcription_engine", Const("deepgram/nova-3")),
    req("transcription_model", Const("deepgram/nova-3")),
    opt("interim_results", Bool),
    opt("keyterms", Strs),
    opt("keywords_boosting", Object),
    opt("language", OneOf(DEEPGRAM_NOVA3_LANGUAGES)),
    opt("smart_format", Bool),
    opt("utterance_end_ms", Int),
];

/// `transcription_engine_config` for `Azure`: `TranscriptionEngineAzureConfigParam` (transcription_engine_azure_config_param.py).
pub static AZURE_CONFIG: &[Field] = &[
    req("region", OneOf(AZURE_REGIONS)),
    req("transcription_engine", Const("Azure")),
    opt("api_key_ref", Str),
    opt("language", OneOf(AZURE_LANGUAGES)),
];

/// `transcription_engine_config` for `xAI`: `TranscriptionEngineXaiConfigParam` (transcription_engine_xai_config_param.py).
pub static XAI_CONFIG: &[Field] = &[
    opt("interim_results", Bool),
    opt("language", OneOf(XAI_LANGUAGES)),
    opt("transcription_engine", Const("xAI")),
    opt("transcription_model", Const("xai/grok-stt")),
];

/// `transcription_engine_config` for `AssemblyAI`: `TranscriptionEngineAssemblyaiConfigParam` (transcription_engine_assemblyai_config_param.py).
pub static ASSEMBLYAI_CONFIG: &[Field] = &[
    opt("interim_results", Bool),
    opt("transcription_engine", Const("AssemblyAI")),
    opt("transcription_model", Const("assemblyai/universal-streaming")),
];

/// `transcription_engine_config` for `Speechmatics`: `TranscriptionEngineSpeechmaticsConfigParam` (transcription_engine_speechmatics_config_param.py).
pub static SPEECHMATICS_CONFIG: &[Field] = &[
    opt("interim_results", Bool),
    opt("language", OneOf(SPEECHMATICS_LANGUAGES)),
    opt("transcription_engine", Const("Speechmatics")),
    opt("transcription_model", Const("speechmatics/standard")),
];

/// `transcription_engine_config` for `Soniox`: `TranscriptionEngineSonioxConfigParam` (transcription_engine_soniox_config_param.py).
pub static SONIOX_CONFIG: &[Field] = &[
    req("transcription_engine", Const("Soniox")),
    opt("enable_endpoint_detection", Bool),
    opt("interim_results", Bool),
    opt("language", Str),
    opt("max_endpoint_delay_ms", Int),
    opt("transcription_model", Const("soniox/stt-rt-v4")),
];

/// `transcription_engine_config` for `Parakeet`: `TranscriptionEngineParakeetConfigParam` (transcription_engine_parakeet_config_param.py).
pub static PARAKEET_CONFIG: &[Field] = &[
    opt("interim_results", Bool),
    opt("transcription_engine", Const("Parakeet")),
    opt("transcription_model", Const("nvidia/parakeet-v3")),
];

/// `transcription_engine_config` for `Humain`: `TranscriptionEngineHumainConfigParam` (transcription_engine_humain_config_param.py).
pub static HUMAIN_CONFIG: &[Field] = &[
    opt("language", OneOf(HUMAIN_LANGUAGES)),
    opt("transcription_engine", Const("Humain")),
    opt("transcription_model", Const("humain/realtime")),
];

/// `transcription_engine_config` for `Reson8`: `TranscriptionEngineReson8ConfigParam` (transcription_engine_reson8_config_param.py).
pub static RESON8_CONFIG: &[Field] = &[
    opt("language", OneOf(RESON8_LANGUAGES)),
    opt("transcription_engine", Const("Reson8")),
    opt("transcription_model", Const("reson8/turns")),
];

/// `transcription_engine_config` for `A`: `TranscriptionEngineAConfigParam` (transcription_engine_a_config_param.py).
pub static A_CONFIG: &[Field] = &[
    opt("enable_speaker_diarization", Bool),
    opt("hints", Strs),
    opt("interim_results", Bool),
    opt("language", OneOf(GOOGLE_LANGUAGES)),
    opt("max_speaker_count", Int),
    opt("min_speaker_count", Int),
    opt("model", OneOf(GOOGLE_MODELS)),
    opt("profanity_filter", Bool),
    opt("speech_context", Array),
    opt("transcription_engine", Const("A")),
    opt("use_enhanced", Bool),
];

/// `transcription_engine_config` for `B`: `TranscriptionEngineBConfigParam` (transcription_engine_b_config_param.py).
pub static B_CONFIG: &[Field] = &[
    opt("language", OneOf(TELNYX_LANGUAGES)),
    opt("transcription_engine", Const("B")),
    opt("transcription_model", OneOf(TELNYX_MODELS)),
];
