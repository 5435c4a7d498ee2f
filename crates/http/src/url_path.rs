//! Ids placed in one segment of a request URL's path, percent-encoded as
//! RFC 3986 asks, for the Telnyx and Symbl clients.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Encodes everything but RFC 3986's unreserved characters.
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes `id` for one path segment; characters outside `set` are kept.
pub fn encode(id: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(id, set).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_pass_unencoded() {
        assert_eq!(encode("abc-_.~XYZ09", SEGMENT), "abc-_.~XYZ09");
        assert_eq!(encode("a/b c?#%:", SEGMENT), "a%2Fb%20c%3F%23%25%3A");
        assert_eq!(encode("é", SEGMENT), "%C3%A9");
    }
}
