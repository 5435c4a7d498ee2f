//! Where a store lives. Each backend is one kind of location: a SQLite file,
//! or a PostgreSQL database named by a `postgres://` URL.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// A database location.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
}

/// A `postgres://` or `postgresql://` URL, checked when parsed. It may hold a
/// password: [`fmt::Display`] and [`fmt::Debug`] mask it.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL as given, password included: for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_password(&self.0))
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({self})")
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Location::Postgres(u) => f.debug_tuple("Postgres").field(u).finish(),
        }
    }
}

/// True for what names a PostgreSQL database rather than a file.
pub fn is_postgres_url(given: &str) -> bool {
    let lower = given.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl Location {
    /// A SQLite file.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Location::Sqlite(path.into())
    }

    /// What `--db`, `IVRX_DB` or `[storage] db` names: a `postgres://` or
    /// `postgresql://` URL is a PostgreSQL database (its syntax checked
    /// here), anything else the path of a SQLite file.
    pub fn parse(given: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = given.as_ref();
        match path.to_str() {
            Some(s) if is_postgres_url(s) => {
                let url = s.trim().to_string();
                crate::postgres::config(&url).map_err(|reason| StoreError::BadLocation {
                    given: mask_password(&url),
                    reason: format!("{reason} (expected postgres://USER:PASSWORD@HOST:PORT/DATABASE)"),
                })?;
                Ok(Location::Postgres(PostgresUrl(url)))
            }
            _ => Ok(Location::Sqlite(path.to_path_buf())),
        }
    }

    /// The SQLite file, for a SQLite location.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

/// The location as people see it (a file path, or a URL with its password masked).
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(u) => write!(f, "{u}"),
        }
    }
}

/// `url` with the password of its user part and of a `password=` parameter
/// replaced by `***`.
pub(crate) fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{}{authority}{tail}", &url[..scheme_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_postgres_and_paths_name_sqlite() {
        let pg = Location::parse("postgres://ivrx:s3cret@db.example:5433/calls").unwrap();
        assert!(matches!(pg, Location::Postgres(_)));
        assert_eq!(pg.to_string(), "postgres://ivrx:***@db.example:5433/calls");
        assert!(!format!("{pg:?}").contains("s3cret"));
        let pg = Location::parse("postgresql://ivrx@localhost/ivrx?sslmode=require&password=x").unwrap();
        assert_eq!(pg.to_string(), "postgresql://ivrx@localhost/ivrx?sslmode=require&password=***");
        assert_eq!(Location::parse("ivrx.db").unwrap(), Location::sqlite("ivrx.db"));
        assert_eq!(Location::parse("/var/lib/postgres.db").unwrap(), Location::sqlite("/var/lib/postgres.db"));
        assert_eq!(Location::parse("ivrx.db").unwrap().sqlite_file(), Some(Path::new("ivrx.db")));
    }

    #[test]
    fn a_malformed_url_is_refused_without_its_password() {
        let e = Location::parse("postgres://ivrx:s3cret@host:notaport/db").unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, StoreError::BadLocation { .. }), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
        assert!(msg.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"), "{msg}");
    }

    #[test]
    fn masking_leaves_urls_without_a_password_alone() {
        for url in ["postgres://localhost/ivrx", "postgres://u@h:1/d", "postgres:///ivrx?host=/tmp"] {
            assert_eq!(mask_password(url), url);
        }
    }
}
