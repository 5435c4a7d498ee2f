//! An error and its causes on one line, for logs and typed error messages.

/// `error: cause: cause of cause…`. A cause whose text the line already holds
/// (an error that prints its source as well as returning it) is said once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    join_causes(std::iter::successors(Some(e), |e| e.source()).map(|e| e.to_string()))
}

/// Joins messages, outermost first, with `: `, leaving out any already said.
pub fn join_causes(messages: impl IntoIterator<Item = String>) -> String {
    let mut line = String::new();
    for m in messages {
        if line.is_empty() {
            line = m;
        } else if !m.is_empty() && !line.contains(&m) {
            line.push_str(": ");
            line.push_str(&m);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("starting")]
    struct Starting(#[source] Repeats);

    #[test]
    fn joins_the_causes() {
        assert_eq!(super::error_chain(&Outer(std::io::Error::other("inner"))), "outer: inner");
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let e = Repeats(std::io::Error::from_raw_os_error(2));
        let line = super::error_chain(&e);
        assert_eq!(line.matches("os error 2").count(), 1, "{line}");
        let e = Starting(e);
        assert_eq!(super::error_chain(&e).matches("os error 2").count(), 1);
    }
}
