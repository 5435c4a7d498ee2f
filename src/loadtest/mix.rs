//! Caller scripts for a load run and the mix they are played in.
//!
//! A mix is `name=weight,…` over named scripts (the bundled examples, or the
//! `*.ivrx` files of a directory, named by file stem). Calls are assigned by
//! smooth weighted round robin, so any prefix of the run follows the weights
//! as closely as whole calls allow and the same mix always gives the same
//! sequence.

use std::path::Path;

use crate::eval::Expectation;
use crate::sandbox::script::{closest, LoadError, Script, ScriptError};

/// The bundled example callers (the files in `examples/`), by name.
pub const BUNDLED: &[(&str, &str)] = &[
    ("asks_for_human", include_str!("../../examples/asks_for_human.ivrx")),
    ("calm", include_str!("../../examples/calm.ivrx")),
    ("dtmf", include_str!("../../examples/dtmf.ivrx")),
    ("frustrated", include_str!("../../examples/frustrated.ivrx")),
    ("hangs_up_during_transfer", include_str!("../../examples/hangs_up_during_transfer.ivrx")),
    ("interested_buyer", include_str!("../../examples/interested_buyer.ivrx")),
    ("waits_in_line", include_str!("../../examples/waits_in_line.ivrx")),
];

/// The mix used when none is given with the bundled scripts.
pub const DEFAULT_MIX: &str = "calm=40,frustrated=30,asks_for_human=15,interested_buyer=15";

/// Why a mix or its scripts cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MixError {
    /// A script does not parse.
    #[error("caller script {name}: {source}")]
    Script {
        /// The script (its name, or its file).
        name: String,
        /// Why.
        #[source]
        source: ScriptError,
    },
    /// A script file cannot be used.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The directory cannot be listed.
    #[error("cannot list scripts in {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no `*.ivrx` file.
    #[error("no *.ivrx caller scripts in {0}")]
    NoScripts(String),
    /// An entry is not `name=weight`.
    #[error("mix entry {0:?} is not NAME=WEIGHT (e.g. calm=40)")]
    Syntax(String),
    /// A weight is not a whole number.
    #[error("mix weight of {name} must be a whole number, got {weight:?}")]
    Weight {
        /// The script.
        name: String,
        /// What was given.
        weight: String,
    },
    /// A name in the mix is not among the scripts.
    #[error("no caller script named {name:?} (available: {available})")]
    Unknown {
        /// The name.
        name: String,
        /// The names there are.
        available: String,
    },
    /// A script's `# expect:` directive cannot be read.
    #[error("script {name}: `# expect: {value}` is not no-transfer, transfer QUEUE at N, or transfer QUEUE by dtmf")]
    Expect {
        /// The script.
        name: String,
        /// The directive's value.
        value: String,
    },
    /// `--script` names neither a file nor a bundled caller.
    #[error("no caller script at {path}: give a script file, or a bundled caller by name ({available}){hint}")]
    NoScript {
        /// What was given.
        path: String,
        /// The bundled callers.
        available: String,
        /// A suggestion, with its leading punctuation, or nothing.
        hint: String,
    },
    /// Every weight is zero.
    #[error("the mix has no script with a weight above zero")]
    Empty,
}

/// A named caller script.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerScript {
    /// The name (file stem).
    pub name: String,
    /// The script as sent to the sandbox.
    pub text: String,
    /// What its `# expect:` directive says, if it has one.
    pub expect: Option<Expectation>,
}

impl CallerScript {
    /// Parses a script named `name`, reading its `# expect:` directive.
    pub fn parse(name: &str, text: &str) -> Result<Self, MixError> {
        Self::parse_labelled(name, name, text)
    }

    fn parse_labelled(name: &str, label: &str, text: &str) -> Result<Self, MixError> {
        let script = Script::parse(text).map_err(|source| MixError::Script { name: label.into(), source })?;
        let expect = match script.directive("expect") {
            None => None,
            Some(v) => {
                Some(Expectation::parse(v).ok_or_else(|| MixError::Expect { name: label.into(), value: v.into() })?)
            }
        };
        Ok(Self { name: name.to_string(), text: text.to_string(), expect })
    }
}

/// The bundled example callers.
pub fn bundled() -> Result<Vec<CallerScript>, MixError> {
    BUNDLED.iter().map(|(n, t)| CallerScript::parse(n, t)).collect()
}

/// The caller script `--script` names: a file, else a bundled caller by
/// name (`frustrated`, or `frustrated.ivrx`), so the bundled callers play from
/// any directory.
pub fn script_named(arg: &Path) -> Result<CallerScript, MixError> {
    if arg.exists() {
        let text =
            std::fs::read_to_string(arg).map_err(|source| LoadError::Io { path: arg.display().to_string(), source })?;
        let name = arg.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        return CallerScript::parse_labelled(&name, &arg.display().to_string(), &text);
    }
    let given = arg.to_string_lossy();
    let name = given.strip_suffix(".ivrx").unwrap_or(&given);
    if let Some((name, text)) = BUNDLED.iter().find(|(n, _)| *n == name) {
        return CallerScript::parse(name, text);
    }
    let names: Vec<&str> = BUNDLED.iter().map(|(n, _)| *n).collect();
    let stem = arg.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let hint = match (names.contains(&stem.as_str()), closest(&stem, &names)) {
        (true, _) => format!("; did you mean the bundled caller: --script {stem}?"),
        (false, Some(n)) => format!("; did you mean --script {n}?"),
        (false, None) => String::new(),
    };
    Err(MixError::NoScript { path: given.into_owned(), available: names.join(", "), hint })
}

/// Every `*.ivrx` script in `dir`, sorted by name.
pub fn from_dir(dir: &Path) -> Result<Vec<CallerScript>, MixError> {
    let entries = std::fs::read_dir(dir).map_err(|source| MixError::Dir { path: dir.display().to_string(), source })?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| MixError::Dir { path: dir.display().to_string(), source })?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("ivrx") {
            continue;
        }
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&path)
            .map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
        out.push(CallerScript::parse_labelled(&name, &path.display().to_string(), &text)?);
    }
    if out.is_empty() {
        return Err(MixError::NoScripts(dir.display().to_string()));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Scripts with weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// The scripts played, each with its weight (all above zero).
    pub entries: Vec<(CallerScript, u32)>,
}

impl Mix {
    /// Parses `name=weight,…` over `scripts`.
    pub fn parse(spec: &str, scripts: &[CallerScript]) -> Result<Self, MixError> {
        let mut entries: Vec<(CallerScript, u32)> = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or_else(|| MixError::Syntax(part.to_string()))?;
            let (name, weight) = (name.trim(), weight.trim());
            let w: u32 =
                weight.parse().map_err(|_| MixError::Weight { name: name.to_string(), weight: weight.to_string() })?;
            let script = scripts.iter().find(|s| s.name == name).ok_or_else(|| MixError::Unknown {
                name: name.to_string(),
                available: scripts.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
            })?;
            if w == 0 {
                continue;
            }
            match entries.iter_mut().find(|(s, _)| s.name == name) {
                Some((_, existing)) => *existing = existing.saturating_add(w),
                None => entries.push((script.clone(), w)),
            }
        }
        if entries.is_empty() {
            return Err(MixError::Empty);
        }
        Ok(Self { entries })
    }

    /// Every script with weight 1.
    pub fn equal(scripts: Vec<CallerScript>) -> Result<Self, MixError> {
        if scripts.is_empty() {
            return Err(MixError::Empty);
        }
        Ok(Self { entries: scripts.into_iter().map(|s| (s, 1)).collect() })
    }

    /// Which entry each of `calls` calls plays (smooth weighted round robin).
    pub fn assign(&self, calls: usize) -> Vec<u16> {
        let total: i64 = self.entries.iter().map(|(_, w)| i64::from(*w)).sum();
        let mut current = vec![0i64; self.entries.len()];
        let mut out = Vec::with_capacity(calls);
        for _ in 0..calls {
            let mut best = 0;
            for (i, (_, w)) in self.entries.iter().enumerate() {
                current[i] += i64::from(*w);
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            out.push(best as u16);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_files_or_bundled_callers_by_name() {
        assert_eq!(script_named(Path::new("frustrated")).unwrap().name, "frustrated");
        assert_eq!(script_named(Path::new("calm.ivrx")).unwrap().name, "calm");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.ivrx");
        std::fs::write(&file, "say hello\nhangup\n").unwrap();
        assert_eq!(script_named(&file).unwrap().text, "say hello\nhangup\n");
        let e = script_named(Path::new("callers/frustrated.ivrx")).unwrap_err().to_string();
        assert!(
            e.contains("calm, dtmf, frustrated")
                && e.ends_with("did you mean the bundled caller: --script frustrated?"),
            "{e}"
        );
        let e = script_named(Path::new("frustated")).unwrap_err().to_string();
        assert!(e.ends_with("did you mean --script frustrated?"), "{e}");
    }

    #[test]
    fn bundled_scripts_all_say_what_to_expect() {
        let b = bundled().unwrap();
        assert_eq!(b.len(), BUNDLED.len());
        assert!(b.iter().all(|s| s.expect.is_some()));
        Mix::parse(DEFAULT_MIX, &b).unwrap();
    }

    #[test]
    fn assignment_follows_the_weights_exactly() {
        let b = bundled().unwrap();
        let mix = Mix::parse("calm=40, frustrated=30,asks_for_human=15,interested_buyer=15,dtmf=0", &b).unwrap();
        assert_eq!(mix.entries.len(), 4);
        let plan = mix.assign(1000);
        let count = |i: u16| plan.iter().filter(|&&x| x == i).count();
        assert_eq!((count(0), count(1), count(2), count(3)), (400, 300, 150, 150));
        // Interleaved, not in blocks: the first 20 calls already hold every script.
        assert!((0..4).all(|i| plan[..20].contains(&i)));
        assert_eq!(plan, mix.assign(1000));
    }

    #[test]
    fn bad_mixes_are_refused_with_the_reason() {
        let b = bundled().unwrap();
        assert!(matches!(Mix::parse("calm", &b), Err(MixError::Syntax(_))));
        assert!(matches!(Mix::parse("calm=x", &b), Err(MixError::Weight { .. })));
        let e = Mix::parse("nobody=1", &b).unwrap_err();
        assert!(e.to_string().contains("available: asks_for_human, calm"), "{e}");
        assert!(matches!(Mix::parse("calm=0", &b), Err(MixError::Empty)));
        assert_eq!(Mix::parse("calm=1,calm=2", &b).unwrap().entries[0].1, 3);
    }

    #[test]
    fn scripts_come_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(from_dir(dir.path()), Err(MixError::NoScripts(_))));
        std::fs::write(dir.path().join("b.ivrx"), "# expect: no-transfer\nsay hello\nhangup\n").unwrap();
        std::fs::write(dir.path().join("a.ivrx"), "say hi\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let s = from_dir(dir.path()).unwrap();
        assert_eq!(s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((s[0].expect.clone(), s[1].expect.clone()), (None, Some(Expectation::NoTransfer)));
        std::fs::write(dir.path().join("c.ivrx"), "# expect: maybe\nsay hi\n").unwrap();
        assert!(matches!(from_dir(dir.path()), Err(MixError::Expect { .. })));
        std::fs::write(dir.path().join("c.ivrx"), "shout hi\n").unwrap();
        assert!(matches!(from_dir(dir.path()), Err(MixError::Script { .. })));
    }
}
