//! DTMF keys: the sixteen keys of a telephone keypad (`0`-`9`, `*`, `#` and
//! `A`-`D`), as Telnyx's `send_dtmf` takes them and `call.dtmf.received`
//! reports them.

/// True for a DTMF key (`A`-`D` in either case).
pub fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | 'a'..='d')
}

#[cfg(test)]
mod tests {
    use super::is_dtmf;

    #[test]
    fn the_sixteen_keys_in_either_case() {
        assert!("0123456789*#ABCDabcd".chars().all(is_dtmf));
        assert!(!"EeWw, +".chars().any(is_dtmf));
    }
}
