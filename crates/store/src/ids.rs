//! Conversation ids given in full or by a unique prefix, as git takes hashes:
//! what `ivrx watch`, `ivrx transfer` and the admin API accept, and the short
//! form tables print (which they accept back).

use rusqlite::{params, Connection, OptionalExtension};

use super::read::Reader;
use super::StoreError;

/// The shortest prefix looked up (shorter ones must match an id exactly).
pub const MIN_PREFIX: usize = 4;
/// The length tables abbreviate ids to, when that is unique.
pub const SHORT_ID: usize = 8;
/// Candidates listed for an ambiguous prefix.
pub const MAX_CANDIDATES: usize = 10;

/// What an id, or the start of one, names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMatch {
    /// Nothing.
    None,
    /// One conversation.
    One(String),
    /// Several conversations (at most [`MAX_CANDIDATES`] + 1, sorted).
    Many(Vec<String>),
}

impl IdMatch {
    /// The match of `given` among conversations found by an exact lookup
    /// (`exact`) and a prefix lookup (`by_prefix`): an exact id wins.
    pub fn from_found(exact: Option<String>, by_prefix: impl IntoIterator<Item = String>) -> Self {
        if let Some(id) = exact {
            return IdMatch::One(id);
        }
        let mut found: Vec<String> = by_prefix.into_iter().collect();
        found.sort_unstable();
        found.dedup();
        match found.len() {
            0 => IdMatch::None,
            1 => IdMatch::One(found.remove(0)),
            _ => {
                found.truncate(MAX_CANDIDATES + 1);
                IdMatch::Many(found)
            }
        }
    }

    /// Merges two lookups of the same `given` id (e.g. live calls and the store).
    pub fn or(self, other: IdMatch) -> IdMatch {
        match (self, other) {
            (IdMatch::None, m) | (m, IdMatch::None) => m,
            (IdMatch::One(a), IdMatch::One(b)) if a == b => IdMatch::One(a),
            (a, b) => IdMatch::from_found(None, a.into_ids().into_iter().chain(b.into_ids())),
        }
    }

    fn into_ids(self) -> Vec<String> {
        match self {
            IdMatch::None => Vec::new(),
            IdMatch::One(id) => vec![id],
            IdMatch::Many(ids) => ids,
        }
    }

    /// The error message for an ambiguous prefix, listing the candidates.
    pub fn ambiguous_message(given: &str, candidates: &[String]) -> String {
        let list: Vec<&str> = candidates.iter().take(MAX_CANDIDATES).map(String::as_str).collect();
        let count = if candidates.len() > MAX_CANDIDATES {
            format!("more than {MAX_CANDIDATES}")
        } else {
            candidates.len().to_string()
        };
        format!(
            "{given:?} is ambiguous: {count} conversations start with it: {}; give more characters",
            list.join(", ")
        )
    }
}

/// An id as given, without surrounding blanks or the `…` a clipped id ends
/// with (so an id copied from a narrow table still works as a prefix).
pub fn as_given(given: &str) -> &str {
    given.trim().trim_end_matches('…')
}

/// Whether `given` is long enough to be looked up as a prefix.
pub fn is_prefix_candidate(given: &str) -> bool {
    given.chars().count() >= MIN_PREFIX
}

/// The ids among `ids` that start with `given` (for ids held in memory).
pub fn starting_with<'a>(ids: impl IntoIterator<Item = &'a str>, given: &str) -> Vec<String> {
    if !is_prefix_candidate(given) {
        return Vec::new();
    }
    ids.into_iter().filter(|id| id.starts_with(given)).map(str::to_string).collect()
}

/// `?1 <= column < ?1 || U+10FFFF`: the rows whose column starts with ?1,
/// answered from the column's index.
const PREFIX_RANGE: &str = ">= ?1 AND {c} < ?1 || char(1114111)";

fn prefix_clause(column: &str) -> String {
    format!("{column} {}", PREFIX_RANGE.replace("{c}", column))
}

impl Reader {
    /// The conversation `given` names: its id or a leg's call_control_id, in
    /// full or by a unique prefix of at least [`MIN_PREFIX`] characters.
    pub fn find_conversation(&self, given: &str) -> Result<IdMatch, StoreError> {
        let given = as_given(given);
        let conn = self.connection()?;
        find(&conn, given).map_err(|source| StoreError::Sqlite { path: self.path().display().to_string(), source })
    }

    /// The shortest prefix of `id`, of at least [`SHORT_ID`] characters, that
    /// names it alone (the whole id when no prefix does).
    pub fn short_id(&self, id: &str) -> Result<String, StoreError> {
        let conn = self.connection()?;
        short(&conn, id).map_err(|source| StoreError::Sqlite { path: self.path().display().to_string(), source })
    }
}

fn find(conn: &Connection, given: &str) -> rusqlite::Result<IdMatch> {
    let exact: Option<String> = conn
        .query_row(
            "SELECT id FROM conversations WHERE id = ?1
             UNION ALL SELECT conversation_id FROM legs WHERE call_control_id = ?1 LIMIT 1",
            [given],
            |r| r.get(0),
        )
        .optional()?;
    if exact.is_some() || !is_prefix_candidate(given) {
        return Ok(IdMatch::from_found(exact, []));
    }
    let limit = (MAX_CANDIDATES + 1) as i64;
    let q = format!(
        "SELECT id FROM (SELECT id FROM conversations WHERE {} LIMIT ?2)
         UNION SELECT conversation_id FROM (SELECT conversation_id FROM legs WHERE {} LIMIT ?2)",
        prefix_clause("id"),
        prefix_clause("call_control_id")
    );
    let mut stmt = conn.prepare_cached(&q)?;
    let found = stmt.query_map(params![given, limit], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(IdMatch::from_found(None, found))
}

fn short(conn: &Connection, id: &str) -> rusqlite::Result<String> {
    let q = format!("SELECT count(*) FROM (SELECT 1 FROM conversations WHERE {} LIMIT 2)", prefix_clause("id"));
    let mut stmt = conn.prepare_cached(&q)?;
    let chars: Vec<(usize, char)> = id.char_indices().collect();
    for n in SHORT_ID..chars.len() {
        let prefix = &id[..chars[n].0];
        if stmt.query_row([prefix], |r| r.get::<_, i64>(0))? <= 1 {
            return Ok(prefix.to_string());
        }
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(ids: &[&str], legs: &[(&str, &str)]) -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ivrx.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE conversations (id TEXT PRIMARY KEY); CREATE TABLE legs (call_control_id TEXT PRIMARY KEY, conversation_id TEXT);")
            .unwrap();
        for id in ids {
            conn.execute("INSERT INTO conversations VALUES (?1)", [id]).unwrap();
        }
        for (ccid, conv) in legs {
            conn.execute("INSERT INTO legs VALUES (?1, ?2)", [ccid, conv]).unwrap();
        }
        (dir, Reader::new(path))
    }

    #[test]
    fn unique_prefixes_exact_ids_and_legs_name_a_conversation() {
        let (_d, r) = db(&["ed6159f1-aaaa", "ed6159f2-bbbb", "c1"], &[("v3:leg-one", "c1")]);
        assert_eq!(r.find_conversation("ed6159f1").unwrap(), IdMatch::One("ed6159f1-aaaa".into()));
        assert_eq!(r.find_conversation(" ed6159f1-a… ").unwrap(), IdMatch::One("ed6159f1-aaaa".into()), "as clipped");
        assert_eq!(r.find_conversation("c1").unwrap(), IdMatch::One("c1".into()), "short ids match exactly");
        assert_eq!(r.find_conversation("v3:leg").unwrap(), IdMatch::One("c1".into()));
        assert_eq!(r.find_conversation("v3:leg-one").unwrap(), IdMatch::One("c1".into()));
        assert_eq!(
            r.find_conversation("ed6159").unwrap(),
            IdMatch::Many(vec!["ed6159f1-aaaa".into(), "ed6159f2-bbbb".into()])
        );
        assert_eq!(r.find_conversation("ed6").unwrap(), IdMatch::None, "too short to be a prefix");
        assert_eq!(r.find_conversation("zzzz").unwrap(), IdMatch::None);
    }

    #[test]
    fn short_ids_grow_until_unique() {
        let (_d, r) = db(&["ed6159f1-aaaa", "ed6159f1-abbb", "0123456789"], &[]);
        assert_eq!(r.short_id("ed6159f1-aaaa").unwrap(), "ed6159f1-aa");
        assert_eq!(r.short_id("0123456789").unwrap(), "01234567");
        assert_eq!(r.short_id("c1").unwrap(), "c1");
    }

    #[test]
    fn merged_lookups_list_every_candidate() {
        let m = IdMatch::One("a".into()).or(IdMatch::One("b".into()));
        assert_eq!(m, IdMatch::Many(vec!["a".into(), "b".into()]));
        assert_eq!(IdMatch::None.or(IdMatch::One("a".into())), IdMatch::One("a".into()));
        assert_eq!(IdMatch::One("a".into()).or(IdMatch::One("a".into())), IdMatch::One("a".into()));
        let msg = IdMatch::ambiguous_message("ed61", &["ed6159f1".into(), "ed61aa".into()]);
        assert_eq!(msg, "\"ed61\" is ambiguous: 2 conversations start with it: ed6159f1, ed61aa; give more characters");
    }
}
