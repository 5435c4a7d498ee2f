//! Conversation ids by prefix in SQLite (see [`crate::ids`]): range scans
//! over the primary keys, so a lookup stays an index seek at any size.

use rusqlite::{params, Connection, OptionalExtension};

use super::read::Reader;
use crate::ids::{as_given, is_prefix_candidate, IdMatch, MAX_CANDIDATES, SHORT_ID};
use crate::StoreError;

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
        let conn = self.connection()?;
        find(&conn, as_given(given)).map_err(self.err())
    }

    /// The shortest prefix of `id`, of at least [`SHORT_ID`] characters, that
    /// names it alone (the whole id when no prefix does).
    pub fn short_id(&self, id: &str) -> Result<String, StoreError> {
        let conn = self.connection()?;
        short(&conn, id).map_err(self.err())
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
}
