//! Transcription engines, end to end.
//!
//! `ivrx serve` refuses at start, in one line naming the key and the fix, a
//! language or engine setting that Telnyx would refuse; and each engine's
//! configuration (Google, Telnyx, Deepgram, Azure) carries a whole call through
//! the sandbox carrier, which validates it the way Telnyx does, transcribes
//! from the answer on, and sends interim results only where the engine has them.

mod serve_support;

use serde_json::Value;
use serve_support::{caller_lines, ivrx, Serve};

/// Runs `ivrx serve --print-config` with this `ivrx.toml`.
fn print_config(toml: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ivrx.toml");
    std::fs::write(&path, toml).expect("write ivrx.toml");
    ivrx(dir.path()).args(["serve", "--print-config", "--config"]).arg(&path).output().expect("run ivrx serve")
}

fn refused(toml: &str, key: &str, fix: &str) {
    let out = print_config(toml);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{toml:?} was accepted:\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "nothing is printed for a refused configuration");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&format!("`{key}`")), "names the key {key}: {stderr}");
    assert!(stderr.contains(fix), "says the fix ({fix}): {stderr}");
}

#[test]
fn serve_refuses_a_language_or_engine_telnyx_would_refuse_in_one_line() {
    refused("[ivr]\nlanguage = \"en\"\n", "ivr.language", "\"en-US\"");
    refused("[ivr]\nlanguage = \"english\"\n", "ivr.language", "use one of");
    refused("[ivr]\ntranscription_engine = \"google\"\n", "ivr.transcription_engine", "use \"Google\"");
    refused(
        "[ivr]\ntranscription_engine = \"Deepgram\"\n",
        "transcription.deepgram.transcription_model",
        "add transcription_model = \"deepgram/nova-3\" under [transcription.deepgram]",
    );
    refused(
        "[ivr]\ntranscription_engine = \"Deepgram\"\n[transcription.deepgram]\ntranscription_model = \"nova-3\"\n",
        "transcription.deepgram.transcription_model",
        "closest: \"deepgram/nova-3\"",
    );
    refused("[ivr]\ntranscription_engine = \"Azure\"\n", "transcription.azure.region", "add region = ");
    refused("[ivr]\nlanguage = \"cy-GB\"\n", "ivr.language", "[transcription.google]");
    refused("[ivr]\ntranscription_engine = \"xAI\"\n", "ivr.transcription_engine", "\"Telnyx\"");
    // The default needs no key, and a complete engine section is accepted.
    for ok in [
        "",
        "[ivr]\ntranscription_engine = \"Deepgram\"\n[transcription.deepgram]\ntranscription_model = \"deepgram/nova-3\"\n",
        "[ivr]\nlanguage = \"cy-GB\"\ntranscription_engine = \"Telnyx\"\n",
    ] {
        let out = print_config(ok);
        assert!(out.status.success(), "{ok:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("transcription_engine"));
    }
}

const CALL: &str = "\
say hi i need some help with my account
say i want to talk to a real person please
pause 20
say thanks for picking up that is great
hangup
";

/// The `call.transcription` webhooks stored for a conversation: (finals, interims).
fn transcriptions(s: &Serve, conv: &str) -> (usize, usize) {
    let conn = ivrx::store::Reader::new(s.db()).connection().expect("open the store");
    let mut stmt = conn
        .prepare("SELECT body FROM webhooks WHERE conversation_id = ?1 AND event_type = 'call.transcription'")
        .expect("query");
    let bodies: Vec<String> = stmt.query_map([conv], |r| r.get(0)).expect("rows").map(|r| r.expect("row")).collect();
    let is_final = |b: &String| {
        let v: Value = serde_json::from_str(b).expect("stored body is JSON");
        v.pointer("/data/payload/transcription_data/is_final").and_then(Value::as_bool).unwrap_or(true)
    };
    let finals = bodies.iter().filter(|b| is_final(b)).count();
    (finals, bodies.len() - finals)
}

#[test]
fn each_engine_carries_a_whole_call_through_the_sandbox() {
    let engines = [
        ("Google", "", true),
        ("Telnyx", "[transcription.telnyx]\ntranscription_model = \"openai/whisper-large-v3-turbo\"\n", false),
        (
            "Deepgram",
            "[transcription.deepgram]\ntranscription_model = \"deepgram/nova-3\"\nkeyterms = [\"Acme\"]\n",
            true,
        ),
        ("Azure", "[transcription.azure]\nregion = \"westeurope\"\n", false),
    ];
    for (engine, section, interims) in engines {
        let config = format!("[ivr]\ntranscription_engine = \"{engine}\"\n{section}");
        let s = Serve::start(&config, &[]);
        let r = s.dial(CALL);
        let lines = caller_lines(&r);
        assert_eq!(
            lines.first().map(String::as_str),
            Some("hi i need some help with my account"),
            "{engine}: the caller's first words are transcribed: {r}"
        );
        assert_eq!(r["transferred"], true, "{engine}: {r}");
        assert_eq!(r["reason"], "asked_for_human", "{engine}: {r}");
        assert_eq!(r["trigger_index"], 2, "{engine}: at the second caller line: {r}");
        let agent = r["utterances"].as_array().unwrap().iter().any(|u| u["speaker"] == "agent");
        assert!(agent, "{engine}: the agent's leg is transcribed too: {r}");
        let conv = r["conversation_id"].as_str().unwrap();
        let (finals, interim) = transcriptions(&s, conv);
        assert!(finals >= lines.len(), "{engine}: {finals} finals for {} caller lines", lines.len());
        assert_eq!(interim > 0, interims, "{engine}: {interim} interim results");
        let log = s.log.lock().unwrap().join("\n");
        assert!(!log.contains("90012") && !log.contains("10004"), "{engine}: a command was refused:\n{log}");
    }
}
