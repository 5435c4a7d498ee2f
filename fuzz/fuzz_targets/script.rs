//! Caller scripts (`say` / `press` / `pause` / `hangup`): parsing never
//! panics, and a parsed script prints back to text that parses to the same
//! script.

#![no_main]

use ivrx_sandbox::Script;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(script) = Script::parse(text) else { return };
    let printed = script.to_string();
    let again = Script::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not parse again: {e}"));
    assert_eq!(again, script, "{printed:?}");
    let _ = script.utterances().count();
});
