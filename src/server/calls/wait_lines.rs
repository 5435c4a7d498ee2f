//! Who waits in each Telnyx call queue, in order. Telnyx bridges an agent
//! with the head of a queue only, so only the caller at the head tries the
//! agents; when the head leaves (`call.dequeued`, or its conversation ends)
//! the next caller is told it is now first
//! ([`Input::QueueHead`](crate::session::Input::QueueHead)).
//!
//! The lines are this process's: they are rebuilt from the stored sessions
//! after a restart (each caller in its place, by when Telnyx enqueued them).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// One queue's line: when each conversation joined it, and the conversation,
/// first in line first.
type Line = Vec<(DateTime<Utc>, String)>;

/// The conversations waiting in each queue.
#[derive(Debug, Default)]
pub struct WaitLines(Mutex<HashMap<String, Line>>);

impl WaitLines {
    /// `conv`'s caller is in `queue` since `since` (`call.enqueued`): in line
    /// behind everyone who joined before. True when they are first in line.
    pub fn joined(&self, queue: &str, conv: &str, since: DateTime<Utc>) -> bool {
        let Ok(mut lines) = self.0.lock() else { return false };
        let line = lines.entry(queue.to_string()).or_default();
        if let Some(at) = line.iter().position(|(_, c)| c == conv) {
            return at == 0;
        }
        let at = line.partition_point(|(t, _)| *t <= since);
        line.insert(at, (since, conv.to_string()));
        at == 0
    }

    /// `conv` left `queue`: the conversation now at its head when that
    /// changed.
    pub fn left(&self, queue: &str, conv: &str) -> Option<String> {
        let Ok(mut lines) = self.0.lock() else { return None };
        Self::take_out(&mut lines, queue, conv)
    }

    /// `conv` ended: it leaves every line; the new heads.
    pub fn ended(&self, conv: &str) -> Vec<String> {
        let Ok(mut lines) = self.0.lock() else { return Vec::new() };
        let queues: Vec<String> = lines.keys().cloned().collect();
        queues.iter().filter_map(|q| Self::take_out(&mut lines, q, conv)).collect()
    }

    fn take_out(lines: &mut HashMap<String, Line>, queue: &str, conv: &str) -> Option<String> {
        let line = lines.get_mut(queue)?;
        let at = line.iter().position(|(_, c)| c == conv)?;
        line.remove(at);
        let head = (at == 0).then(|| line.first().map(|(_, c)| c.clone())).flatten();
        if line.is_empty() {
            lines.remove(queue);
        }
        head
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, s).unwrap()
    }

    #[test]
    fn the_next_in_line_is_named_only_when_the_head_leaves() {
        let lines = WaitLines::default();
        assert!(lines.joined("support", "a", t(1)));
        assert!(!lines.joined("support", "b", t(2)));
        assert!(!lines.joined("support", "c", t(3)));
        assert!(!lines.joined("support", "b", t(2)), "joins once");
        assert!(lines.joined("sales", "x", t(1)));
        assert_eq!(lines.left("support", "b"), None, "b was not first");
        assert_eq!(lines.left("support", "a"), Some("c".into()));
        assert_eq!(lines.left("support", "a"), None, "told once");
        assert_eq!(lines.ended("c"), Vec::<String>::new(), "nobody waits behind c");
        assert_eq!(lines.left("sales", "x"), None);
    }

    #[test]
    fn callers_restored_in_any_order_take_their_places_by_when_they_joined() {
        let lines = WaitLines::default();
        assert!(lines.joined("q", "c", t(3)));
        assert!(lines.joined("q", "a", t(1)), "a joined first");
        assert!(!lines.joined("q", "b", t(2)));
        assert_eq!(lines.left("q", "a"), Some("b".into()));
        assert_eq!(lines.left("q", "b"), Some("c".into()));
    }
}
