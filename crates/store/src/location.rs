//! Where a store lives: a SQLite file, or a PostgreSQL database named by URL.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// A database location, as given to `--db`, `IVRX_DB` or `[storage] db`: a
/// `postgres://` (or `postgresql://`) URL, or else a SQLite file path.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=…`).
    Postgres(String),
}

impl Location {
    /// Reads a location: a `postgres://` or `postgresql://` URL, else a file
    /// path. Any other `scheme://` is refused rather than taken for a path.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(StoreError::Location { location: text.into(), reason: "it is empty".into() });
        }
        match t.split_once("://") {
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql") => {
                Ok(Location::Postgres(t.to_string()))
            }
            Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => {
                Err(StoreError::Location {
                    location: text.into(),
                    reason: format!(
                        "{scheme}:// is not supported; use a SQLite file path or a postgres://USER:PASSWORD@HOST:PORT/DB URL"
                    ),
                })
            }
            _ => Ok(Location::Sqlite(PathBuf::from(t))),
        }
    }

    /// A SQLite file.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Location::Sqlite(path.into())
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// The location as configured, password included (for configuration files).
    pub fn as_configured(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => url.clone(),
        }
    }
}

/// Shown to people: a URL's password is masked.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&mask_password(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

impl std::str::FromStr for Location {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Location::parse(s)
    }
}

/// Written as configured (a configuration file keeps its password; see
/// [`mask_password`] for showing it).
impl serde::Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_configured())
    }
}

impl<'de> serde::Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Location::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:****@host/…`; a
/// `password=` query parameter is masked too.
pub fn mask_password(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some(x) => x,
        None => return url.to_string(),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:****@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_everything_else_is_a_file() {
        assert_eq!(Location::parse("ivrx.db").unwrap(), Location::Sqlite("ivrx.db".into()));
        assert_eq!(
            Location::parse(" /var/lib/ivrx/ivrx.db ").unwrap(),
            Location::Sqlite("/var/lib/ivrx/ivrx.db".into())
        );
        assert!(matches!(Location::parse("postgres://u:p@h:5432/ivrx").unwrap(), Location::Postgres(_)));
        assert!(matches!(Location::parse("PostgreSQL://h/ivrx").unwrap(), Location::Postgres(_)));
        let e = Location::parse("mysql://h/db").unwrap_err().to_string();
        assert!(e.contains("mysql:// is not supported") && e.contains("postgres://"), "{e}");
        assert!(Location::parse("  ").is_err());
    }

    #[test]
    fn passwords_are_never_shown() {
        let l = Location::parse("postgres://ivrx:s3cret@db.example.com:5432/ivrx?sslmode=require").unwrap();
        assert_eq!(l.to_string(), "postgres://ivrx:****@db.example.com:5432/ivrx?sslmode=require");
        assert_eq!(format!("{l:?}"), "Location(postgres://ivrx:****@db.example.com:5432/ivrx?sslmode=require)");
        assert!(l.as_configured().contains("s3cret"));
        assert_eq!(mask_password("postgres://h/db?user=a&password=x"), "postgres://h/db?user=a&password=****");
        assert_eq!(mask_password("postgres://a@h/db"), "postgres://a@h/db");
        assert_eq!(mask_password("postgres://a:b:c@h@x/db"), "postgres://a:****@x/db");
    }
}
