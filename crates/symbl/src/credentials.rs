//! Symbl credentials: `symbl.conf` (`[credentials]` with `app_id` and
//! `app_secret`) or the `SYMBL_APP_ID` / `SYMBL_APP_SECRET` environment.
//!
//! Resolution order, first complete match wins:
//!
//! 1. an explicit file (`--symbl-conf`): when given, nothing else is searched;
//! 2. the environment, when both variables are set;
//! 3. `./symbl.conf` in the working directory (where Symbl's own SDK looks first);
//! 4. `<config dir>/ivrx/symbl.conf`;
//! 5. `<home>/symbl.conf` (where Symbl's SDK looks next).
//!
//! The roots are fields of [`CredentialSearch`], so tests never touch the real
//! home directory or environment.

use std::fmt;
use std::path::{Path, PathBuf};

/// The file name looked for in each directory.
pub const FILE_NAME: &str = "symbl.conf";
/// Environment variable holding the app id.
pub const ENV_APP_ID: &str = "SYMBL_APP_ID";
/// Environment variable holding the app secret.
pub const ENV_APP_SECRET: &str = "SYMBL_APP_SECRET";
/// What a credentials file looks like (shown in errors).
pub const FILE_FORMAT: &str = "[credentials]\napp_id=<your Symbl app id>\napp_secret=<your Symbl app secret>\n";

const SECTION: &str = "credentials";
const KEY_APP_ID: &str = "app_id";
const KEY_APP_SECRET: &str = "app_secret";

/// Where credentials came from (named in errors such as a refused login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// A credentials file.
    File(PathBuf),
    /// `SYMBL_APP_ID` and `SYMBL_APP_SECRET`.
    Environment,
    /// Handed over by the program (tests, embedding).
    Provided,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::File(p) => write!(f, "{}", p.display()),
            CredentialSource::Environment => write!(f, "the environment ({ENV_APP_ID}, {ENV_APP_SECRET})"),
            CredentialSource::Provided => write!(f, "the credentials given to the program"),
        }
    }
}

/// A Symbl app id and secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    app_id: String,
    app_secret: String,
    source: CredentialSource,
}

impl Credentials {
    /// Credentials handed over directly.
    pub fn new(app_id: impl Into<String>, app_secret: impl Into<String>) -> Self {
        Self { app_id: app_id.into(), app_secret: app_secret.into(), source: CredentialSource::Provided }
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The app secret (send it to Symbl, never log it).
    pub fn app_secret(&self) -> &str {
        &self.app_secret
    }

    /// Where these credentials came from.
    pub fn source(&self) -> &CredentialSource {
        &self.source
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// Something worth telling the user while credentials were still found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsWarning {
    /// The file can be read by group or others.
    #[error("{path} is readable by other users (mode {mode:03o}); restrict it with: chmod 600 {path}", path = path.display())]
    Permissions {
        /// The credentials file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// An earlier place held something, but not complete credentials.
    #[error("skipped {place}: {outcome}")]
    Skipped {
        /// The place that was skipped.
        place: String,
        /// Why.
        outcome: String,
    },
}

/// One place searched and what was found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchedPlace {
    /// Human description (`--symbl-conf /x`, `the environment …`, a path).
    pub place: String,
    /// What was found.
    pub outcome: SearchOutcome,
}

/// What a searched place held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchOutcome {
    /// No such file.
    FileNotFound,
    /// Neither environment variable is set.
    NotSet,
    /// The directory is unknown on this system.
    DirectoryUnknown,
    /// The file exists but could not be read.
    Unreadable(String),
    /// The file has no `[credentials]` section.
    NoSection,
    /// These keys are missing or empty.
    MissingKeys(Vec<&'static str>),
}

impl SearchOutcome {
    /// True when the place held something unusable (as opposed to nothing).
    fn is_worth_a_warning(&self) -> bool {
        !matches!(self, SearchOutcome::FileNotFound | SearchOutcome::NotSet | SearchOutcome::DirectoryUnknown)
    }
}

impl fmt::Display for SearchOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchOutcome::FileNotFound => f.write_str("no such file"),
            SearchOutcome::NotSet => f.write_str("not set"),
            SearchOutcome::DirectoryUnknown => f.write_str("directory unknown on this system, not searched"),
            SearchOutcome::Unreadable(e) => write!(f, "cannot read it: {e}"),
            SearchOutcome::NoSection => f.write_str("no [credentials] section"),
            SearchOutcome::MissingKeys(keys) => write!(f, "missing {}", keys.join(" and ")),
        }
    }
}

/// No usable credentials anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_missing(searched))]
pub struct CredentialsError {
    /// Every place searched, in order, with what was found.
    pub searched: Vec<SearchedPlace>,
}

fn render_missing(searched: &[SearchedPlace]) -> String {
    let mut s = String::from("no Symbl credentials found. Searched, in order:\n");
    for (i, p) in searched.iter().enumerate() {
        s.push_str(&format!("  {}. {}: {}\n", i + 1, p.place, p.outcome));
    }
    s.push_str("Create a symbl.conf (readable only by you: chmod 600) like this:\n");
    for line in FILE_FORMAT.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s.push_str(&format!("or set {ENV_APP_ID} and {ENV_APP_SECRET}."));
    s
}

/// Credentials found, with warnings for the caller to log.
#[derive(Debug, Clone)]
pub struct LoadedCredentials {
    /// The credentials.
    pub credentials: Credentials,
    /// Things to tell the user (loose permissions, skipped files).
    pub warnings: Vec<CredentialsWarning>,
}

/// Where to look for credentials. Build it with [`CredentialSearch::from_system`]
/// in the program and field by field in tests.
#[derive(Clone, Default)]
pub struct CredentialSearch {
    /// An explicit file (`--symbl-conf`); when set, only this file is read.
    pub explicit: Option<PathBuf>,
    /// Value of `SYMBL_APP_ID`.
    pub env_app_id: Option<String>,
    /// Value of `SYMBL_APP_SECRET`.
    pub env_app_secret: Option<String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// The user's config directory (ivrx looks in its `ivrx/` subdirectory).
    pub config_dir: Option<PathBuf>,
    /// The home directory.
    pub home: Option<PathBuf>,
}

impl fmt::Debug for CredentialSearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSearch")
            .field("explicit", &self.explicit)
            .field("env_app_id", &self.env_app_id)
            .field("env_app_secret", &self.env_app_secret.as_ref().map(|_| "<redacted>"))
            .field("cwd", &self.cwd)
            .field("config_dir", &self.config_dir)
            .field("home", &self.home)
            .finish()
    }
}

enum Found {
    Credentials(String, String),
    Nothing(SearchOutcome),
}

impl CredentialSearch {
    /// The real environment, working directory, config directory and home.
    pub fn from_system(explicit: Option<PathBuf>) -> Self {
        Self {
            explicit,
            env_app_id: std::env::var(ENV_APP_ID).ok(),
            env_app_secret: std::env::var(ENV_APP_SECRET).ok(),
            cwd: std::env::current_dir().ok(),
            config_dir: dirs::config_dir(),
            home: dirs::home_dir(),
        }
    }

    /// Finds credentials, or explains every place searched.
    pub fn load(&self) -> Result<LoadedCredentials, CredentialsError> {
        let mut searched = Vec::new();
        if let Some(path) = &self.explicit {
            let place = format!("--symbl-conf {}", path.display());
            return match read_file(path) {
                Found::Credentials(id, secret) => Ok(loaded_from_file(path, id, secret, Vec::new())),
                Found::Nothing(outcome) => Err(CredentialsError { searched: vec![SearchedPlace { place, outcome }] }),
            };
        }

        let env_place = format!("environment {ENV_APP_ID} / {ENV_APP_SECRET}");
        let id = self.env_app_id.as_deref().map(str::trim).filter(|v| !v.is_empty());
        let secret = self.env_app_secret.as_deref().map(str::trim).filter(|v| !v.is_empty());
        match (id, secret) {
            (Some(id), Some(secret)) => {
                return Ok(LoadedCredentials {
                    credentials: Credentials {
                        app_id: id.to_string(),
                        app_secret: secret.to_string(),
                        source: CredentialSource::Environment,
                    },
                    warnings: Vec::new(),
                })
            }
            (None, None) => searched.push(SearchedPlace { place: env_place, outcome: SearchOutcome::NotSet }),
            (Some(_), None) => searched
                .push(SearchedPlace { place: env_place, outcome: SearchOutcome::MissingKeys(vec![ENV_APP_SECRET]) }),
            (None, Some(_)) => {
                searched.push(SearchedPlace { place: env_place, outcome: SearchOutcome::MissingKeys(vec![ENV_APP_ID]) })
            }
        }

        let mut tried: Vec<PathBuf> = Vec::new();
        for (label, path) in self.file_candidates() {
            let Some(path) = path else {
                searched.push(SearchedPlace { place: label, outcome: SearchOutcome::DirectoryUnknown });
                continue;
            };
            if tried.contains(&path) {
                continue;
            }
            tried.push(path.clone());
            let place = format!("{label} ({})", path.display());
            match read_file(&path) {
                Found::Credentials(id, secret) => {
                    let warnings = searched
                        .iter()
                        .filter(|p| p.outcome.is_worth_a_warning())
                        .map(|p| CredentialsWarning::Skipped { place: p.place.clone(), outcome: p.outcome.to_string() })
                        .collect();
                    return Ok(loaded_from_file(&path, id, secret, warnings));
                }
                Found::Nothing(outcome) => searched.push(SearchedPlace { place, outcome }),
            }
        }
        Err(CredentialsError { searched })
    }

    /// The files searched after the environment, in order, with a label each.
    fn file_candidates(&self) -> Vec<(String, Option<PathBuf>)> {
        vec![
            ("working directory".to_string(), self.cwd.as_ref().map(|d| d.join(FILE_NAME))),
            ("config directory".to_string(), self.config_dir.as_ref().map(|d| d.join("ivrx").join(FILE_NAME))),
            ("home directory".to_string(), self.home.as_ref().map(|d| d.join(FILE_NAME))),
        ]
    }
}

fn loaded_from_file(
    path: &Path,
    id: String,
    secret: String,
    mut warnings: Vec<CredentialsWarning>,
) -> LoadedCredentials {
    if let Some(w) = permission_warning(path) {
        warnings.push(w);
    }
    LoadedCredentials {
        credentials: Credentials { app_id: id, app_secret: secret, source: CredentialSource::File(path.to_path_buf()) },
        warnings,
    }
}

fn read_file(path: &Path) -> Found {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Nothing(SearchOutcome::FileNotFound),
        Err(e) => return Found::Nothing(SearchOutcome::Unreadable(e.to_string())),
    };
    match parse_credentials(&text) {
        Ok((id, secret)) => Found::Credentials(id, secret),
        Err(outcome) => Found::Nothing(outcome),
    }
}

/// Reads `app_id` and `app_secret` from the `[credentials]` section of an
/// INI-style text: `key=value` or `key: value` with spaces allowed around the
/// separator, `#` and `;` comment lines, CRLF line ends, optional quotes.
pub fn parse_credentials(text: &str) -> Result<(String, String), SearchOutcome> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut in_section = false;
    let mut seen_section = false;
    let mut app_id = None;
    let mut app_secret = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim().eq_ignore_ascii_case(SECTION);
            seen_section |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        let Some(sep) = line.find(['=', ':']) else { continue };
        let key = line[..sep].trim().to_ascii_lowercase();
        let value = unquote(line[sep + 1..].trim());
        // Empty values and untouched `<placeholders>` (as in symbl.conf.example) count as missing.
        if value.is_empty() || (value.starts_with('<') && value.ends_with('>')) {
            continue;
        }
        match key.as_str() {
            KEY_APP_ID => app_id = Some(value.to_string()),
            KEY_APP_SECRET => app_secret = Some(value.to_string()),
            _ => {}
        }
    }
    if !seen_section {
        return Err(SearchOutcome::NoSection);
    }
    match (app_id, app_secret) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        (id, secret) => {
            let mut missing = Vec::new();
            if id.is_none() {
                missing.push(KEY_APP_ID);
            }
            if secret.is_none() {
                missing.push(KEY_APP_SECRET);
            }
            Err(SearchOutcome::MissingKeys(missing))
        }
    }
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

#[cfg(unix)]
fn permission_warning(path: &Path) -> Option<CredentialsWarning> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| CredentialsWarning::Permissions { path: path.to_path_buf(), mode })
}

#[cfg(not(unix))]
fn permission_warning(_path: &Path) -> Option<CredentialsWarning> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_conf(dir: &Path, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(FILE_NAME);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }

    fn roots(tmp: &Path) -> CredentialSearch {
        CredentialSearch {
            cwd: Some(tmp.join("cwd")),
            config_dir: Some(tmp.join("config")),
            home: Some(tmp.join("home")),
            ..CredentialSearch::default()
        }
    }

    #[test]
    fn parses_spaces_comments_crlf_and_quotes() {
        let text = "# Symbl\r\n; another comment\r\n[other]\r\napp_id = wrong\r\n\r\n[credentials]\r\n  app_id = abc123  \r\napp_secret:\"s3cr=t\"\r\n";
        assert_eq!(parse_credentials(text), Ok(("abc123".into(), "s3cr=t".into())));
        assert_eq!(parse_credentials("\u{feff}[Credentials]\napp_id=a\napp_secret=b"), Ok(("a".into(), "b".into())));
    }

    #[test]
    fn the_example_file_is_valid_but_has_placeholders() {
        let example = include_str!("../../../symbl.conf.example");
        assert_eq!(parse_credentials(example), Err(SearchOutcome::MissingKeys(vec!["app_id", "app_secret"])));
        let filled = example.replace("<your Symbl app id>", "id1").replace("<your Symbl app secret>", "s1");
        assert_eq!(parse_credentials(&filled), Ok(("id1".into(), "s1".into())));
    }

    #[test]
    fn reports_missing_section_and_keys() {
        assert_eq!(parse_credentials("app_id=a\napp_secret=b\n"), Err(SearchOutcome::NoSection));
        assert_eq!(
            parse_credentials("[credentials]\napp_id=a\napp_secret=\n"),
            Err(SearchOutcome::MissingKeys(vec!["app_secret"]))
        );
        assert_eq!(parse_credentials("[credentials]\n"), Err(SearchOutcome::MissingKeys(vec!["app_id", "app_secret"])));
    }

    #[test]
    fn explicit_file_wins_and_is_the_only_place_searched() {
        let tmp = tempfile::tempdir().unwrap();
        write_conf(&tmp.path().join("cwd"), "[credentials]\napp_id=cwd\napp_secret=x\n");
        let explicit = write_conf(&tmp.path().join("elsewhere"), "[credentials]\napp_id=explicit\napp_secret=y\n");
        let mut search = roots(tmp.path());
        search.env_app_id = Some("env".into());
        search.env_app_secret = Some("env-secret".into());
        search.explicit = Some(explicit.clone());
        let loaded = search.load().unwrap();
        assert_eq!(loaded.credentials.app_id(), "explicit");
        assert_eq!(loaded.credentials.source(), &CredentialSource::File(explicit));

        search.explicit = Some(tmp.path().join("missing.conf"));
        let err = search.load().unwrap_err();
        assert_eq!(err.searched.len(), 1);
        assert_eq!(err.searched[0].outcome, SearchOutcome::FileNotFound);
        assert!(err.to_string().contains("missing.conf"));
    }

    #[test]
    fn environment_comes_before_files() {
        let tmp = tempfile::tempdir().unwrap();
        write_conf(&tmp.path().join("cwd"), "[credentials]\napp_id=cwd\napp_secret=x\n");
        let mut search = roots(tmp.path());
        search.env_app_id = Some("env".into());
        search.env_app_secret = Some("env-secret".into());
        let loaded = search.load().unwrap();
        assert_eq!(loaded.credentials.app_id(), "env");
        assert_eq!(loaded.credentials.app_secret(), "env-secret");
        assert_eq!(loaded.credentials.source(), &CredentialSource::Environment);
    }

    #[test]
    fn files_are_searched_cwd_then_config_then_home() {
        let tmp = tempfile::tempdir().unwrap();
        let search = roots(tmp.path());
        let home = write_conf(&tmp.path().join("home"), "[credentials]\napp_id=home\napp_secret=h\n");
        assert_eq!(search.load().unwrap().credentials.source(), &CredentialSource::File(home));
        let config = write_conf(&tmp.path().join("config/ivrx"), "[credentials]\napp_id=config\napp_secret=c\n");
        assert_eq!(search.load().unwrap().credentials.source(), &CredentialSource::File(config));
        let cwd = write_conf(&tmp.path().join("cwd"), "[credentials]\napp_id=cwd\napp_secret=w\n");
        let loaded = search.load().unwrap();
        assert_eq!(loaded.credentials.source(), &CredentialSource::File(cwd));
        assert_eq!(loaded.credentials.app_id(), "cwd");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn an_incomplete_file_is_skipped_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let search = roots(tmp.path());
        write_conf(&tmp.path().join("cwd"), "[credentials]\napp_id=only-id\n");
        write_conf(&tmp.path().join("home"), "[credentials]\napp_id=home\napp_secret=h\n");
        let loaded = search.load().unwrap();
        assert_eq!(loaded.credentials.app_id(), "home");
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].to_string().contains("missing app_secret"), "{}", loaded.warnings[0]);
    }

    #[test]
    fn the_error_names_every_place_and_shows_the_format() {
        let tmp = tempfile::tempdir().unwrap();
        let mut search = roots(tmp.path());
        search.env_app_id = Some("only-id".into());
        write_conf(&tmp.path().join("config/ivrx"), "[creds]\napp_id=a\n");
        let err = search.load().unwrap_err();
        let places: Vec<_> = err.searched.iter().map(|p| p.outcome.clone()).collect();
        assert_eq!(
            places,
            vec![
                SearchOutcome::MissingKeys(vec![ENV_APP_SECRET]),
                SearchOutcome::FileNotFound,
                SearchOutcome::NoSection,
                SearchOutcome::FileNotFound
            ]
        );
        let msg = err.to_string();
        for needle in [
            "SYMBL_APP_ID",
            &tmp.path().join("cwd/symbl.conf").display().to_string(),
            &tmp.path().join("config/ivrx/symbl.conf").display().to_string(),
            &tmp.path().join("home/symbl.conf").display().to_string(),
            "[credentials]",
            "app_id=<your Symbl app id>",
            "app_secret=<your Symbl app secret>",
        ] {
            assert!(msg.contains(needle), "{needle:?} not in:\n{msg}");
        }
    }

    #[test]
    fn unknown_directories_are_listed_and_duplicates_searched_once() {
        let tmp = tempfile::tempdir().unwrap();
        let search = CredentialSearch {
            cwd: Some(tmp.path().to_path_buf()),
            home: Some(tmp.path().to_path_buf()),
            ..CredentialSearch::default()
        };
        let err = search.load().unwrap_err();
        let outcomes: Vec<_> = err.searched.iter().map(|p| p.outcome.clone()).collect();
        assert_eq!(outcomes, vec![SearchOutcome::NotSet, SearchOutcome::FileNotFound, SearchOutcome::DirectoryUnknown]);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_readable_by_others_gives_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = write_conf(tmp.path(), "[credentials]\napp_id=a\napp_secret=b\n");
        let search = CredentialSearch { explicit: Some(path.clone()), ..CredentialSearch::default() };
        assert!(search.load().unwrap().warnings.is_empty());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warnings = search.load().unwrap().warnings;
        assert_eq!(warnings, vec![CredentialsWarning::Permissions { path: path.clone(), mode: 0o644 }]);
        assert!(warnings[0].to_string().contains("chmod 600"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let creds = Credentials::new("my-app", "top-secret-value");
        let dbg = format!("{creds:?}");
        assert!(dbg.contains("my-app") && !dbg.contains("top-secret-value"), "{dbg}");
        let search = CredentialSearch { env_app_secret: Some("top-secret-value".into()), ..Default::default() };
        assert!(!format!("{search:?}").contains("top-secret-value"));
    }
}
