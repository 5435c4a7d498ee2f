//! Conversation ids given in full or by a unique prefix, as git takes hashes:
//! what `ivrx watch`, `ivrx transfer` and the admin API accept, and the short
//! form tables print (which they accept back). Backends answer the lookups
//! ([`Conversations::find_conversation`](crate::Conversations::find_conversation),
//! [`Conversations::short_ids`](crate::Conversations::short_ids)); this module
//! holds what they share.

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

#[cfg(test)]
mod tests {
    use super::*;

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
