//! Caller scripts: what a simulated party says and does, one step per line.
//!
//! ```text
//! # a frustrated caller
//! say my internet has been down since yesterday
//! pause 2
//! press 2
//! say this is ridiculous i want to talk to a real person
//! hangup
//! ```
//!
//! `say TEXT` (what speech recognition would print), `press DIGITS` (0-9, `*`,
//! `#`, A-D), `pause SECONDS`, `hangup`. Blank lines and `#` comments are
//! ignored; comments of the form `# key: value` are kept as directives (the
//! evaluation corpus uses `# expect: …`).

use std::fmt;
use std::path::Path;

use ivrx_telnyx::dtmf::is_dtmf;

/// One step of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Speak a line.
    Say(String),
    /// Press DTMF keys, one after the other.
    Press(String),
    /// Stay silent for this many seconds (sandbox time).
    Pause(f64),
    /// Hang up.
    Hangup,
}

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// `# key: value` comments, in order.
    pub directives: Vec<Directive>,
}

/// A `# key: value` comment.
#[derive(Debug, Clone)]
pub struct Directive {
    /// The key, lower-cased.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
    /// 1-based line number in the script's text (for messages; not compared).
    pub line: usize,
}

/// Directives are equal when they say the same: where they stood in the text
/// is not part of the script (printing one moves its directives to the top).
impl PartialEq for Directive {
    fn eq(&self, other: &Self) -> bool {
        (&self.key, &self.value) == (&other.key, &other.value)
    }
}

impl Eq for Directive {}

/// A script line that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, and how to fix it.
    pub message: String,
}

/// Longest pause a script may ask for.
pub const MAX_PAUSE_SECS: f64 = 3600.0;
/// Longest line a script may say.
pub const MAX_SAY_CHARS: usize = 2000;

impl Script {
    /// Parses script text.
    pub fn parse(text: &str) -> Result<Self, ScriptError> {
        let mut script = Script::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| ScriptError { line, message };
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                if let Some((k, v)) = comment.split_once(':') {
                    let key = k.trim();
                    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                        let (key, value) = (key.to_ascii_lowercase(), v.trim().to_string());
                        script.directives.push(Directive { key, value, line });
                    }
                }
                continue;
            }
            let (verb, rest) = match trimmed.split_once(char::is_whitespace) {
                Some((v, r)) => (v, r.trim()),
                None => (trimmed, ""),
            };
            let step = match verb.to_ascii_lowercase().as_str() {
                "say" => {
                    if rest.is_empty() {
                        return Err(err("`say` needs the words the caller says".into()));
                    }
                    if rest.chars().count() > MAX_SAY_CHARS {
                        return Err(err(format!("`say` is limited to {MAX_SAY_CHARS} characters")));
                    }
                    Step::Say(rest.split_whitespace().collect::<Vec<_>>().join(" "))
                }
                "press" => {
                    let digits: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
                    if digits.is_empty() {
                        return Err(err("`press` needs digits, e.g. `press 2` or `press 1234#`".into()));
                    }
                    if let Some(bad) = digits.chars().find(|c| !is_dtmf(*c)) {
                        return Err(err(format!("`press` accepts 0-9, *, # and A-D, not {bad:?}")));
                    }
                    if digits.len() > 64 {
                        return Err(err("`press` is limited to 64 keys".into()));
                    }
                    Step::Press(digits.to_ascii_uppercase())
                }
                "pause" => {
                    let secs: f64 = rest
                        .trim_end_matches('s')
                        .parse()
                        .map_err(|_| err(format!("`pause` needs seconds, e.g. `pause 1.5`, not {rest:?}")))?;
                    if !secs.is_finite() || !(0.0..=MAX_PAUSE_SECS).contains(&secs) {
                        return Err(err(format!("`pause` must be between 0 and {MAX_PAUSE_SECS} seconds")));
                    }
                    Step::Pause(secs)
                }
                "hangup" | "hang-up" => {
                    if !rest.is_empty() {
                        return Err(err("`hangup` takes nothing after it".into()));
                    }
                    Step::Hangup
                }
                other => {
                    let hint = closest(other, &STEPS).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                    return Err(err(format!(
                        "unknown step {:?}{hint}: use say, press, pause or hangup",
                        other.chars().take(40).collect::<String>()
                    )));
                }
            };
            script.steps.push(step);
        }
        Ok(script)
    }

    /// Reads and parses a script file.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
        Self::parse(&text).map_err(|source| LoadError::Parse { path: path.display().to_string(), source })
    }

    /// The first value of a `# key: value` directive.
    pub fn directive(&self, key: &str) -> Option<&str> {
        self.directives.iter().find(|d| d.key == key).map(|d| d.value.as_str())
    }

    /// Every `# key: value` directive with this key, in order.
    pub fn directives_named<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Directive> {
        self.directives.iter().filter(move |d| d.key == key)
    }

    /// The lines the caller says, in order.
    pub fn utterances(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().filter_map(|s| match s {
            Step::Say(t) => Some(t.as_str()),
            _ => None,
        })
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.directives {
            writeln!(f, "# {}: {}", d.key, d.value)?;
        }
        for s in &self.steps {
            match s {
                Step::Say(t) => writeln!(f, "say {t}")?,
                Step::Press(d) => writeln!(f, "press {d}")?,
                Step::Pause(p) => writeln!(f, "pause {p}")?,
                Step::Hangup => writeln!(f, "hangup")?,
            }
        }
        Ok(())
    }
}

/// A script file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read script {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid script.
    #[error("script {path}, {source}")]
    Parse {
        /// The file.
        path: String,
        /// Where and why.
        #[source]
        source: ScriptError,
    },
}

/// The steps a script line can start with.
pub const STEPS: [&str; 4] = ["say", "press", "pause", "hangup"];

/// The candidate `given` was most likely meant to be (a typo or two away), if any.
pub fn closest<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    let allowed = if given.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&given, c), *c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_step_and_directives() {
        let s = Script::parse(
            "# expect: transfer support at 2\n# a plain comment\n\nsay  hello   there \npress 1#\npause 1.5\nPAUSE 2s\nhangup\n",
        )
        .unwrap();
        assert_eq!(
            s.steps,
            vec![
                Step::Say("hello there".into()),
                Step::Press("1#".into()),
                Step::Pause(1.5),
                Step::Pause(2.0),
                Step::Hangup
            ]
        );
        assert_eq!(s.directive("expect"), Some("transfer support at 2"));
        assert_eq!(s.directives_named("expect").map(|d| d.line).collect::<Vec<_>>(), [1]);
        assert_eq!(s.utterances().collect::<Vec<_>>(), vec!["hello there"]);
        assert_eq!(Script::parse(&s.to_string()).unwrap(), s);
        // Printed, a directive below a step moves to the top: the same script.
        let late = Script::parse("say hi\n\n# category: calm\n").unwrap();
        assert_eq!(late.directives_named("category").map(|d| d.line).collect::<Vec<_>>(), [3]);
        assert_eq!(Script::parse(&late.to_string()).unwrap(), late);
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let cases = [
            ("say\n", 1, "needs the words"),
            ("say hi\npress\n", 2, "needs digits"),
            ("press 12x\n", 1, "not 'x'"),
            ("pause soon\n", 1, "needs seconds"),
            ("pause -1\n", 1, "between 0"),
            ("pause NaN\n", 1, "between 0"),
            ("hangup now\n", 1, "takes nothing"),
            ("shout hi\n", 1, "unknown step"),
            ("say hi\nsya bye\n", 2, "unknown step \"sya\" (did you mean `say`?)"),
            ("hnagup\n", 1, "(did you mean `hangup`?)"),
        ];
        for (text, line, needle) in cases {
            let e = Script::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}");
            assert!(e.message.contains(needle), "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        for text in
            ["\u{0}", "say \u{202e}", "press ########", "pause 1e309", "# :", "#:x", "say é", &"x".repeat(10_000)]
        {
            let _ = Script::parse(text);
        }
    }
}
