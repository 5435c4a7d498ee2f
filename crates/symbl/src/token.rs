//! The access token cache: one token shared by every request, refreshed
//! shortly before it expires, one refresh at a time.

use std::fmt;
use std::time::{Duration, Instant};

/// The longest margin before expiry at which a token is refreshed.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A Symbl access token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token string.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, to put in a header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// How long before expiry a token with this lifetime is refreshed: 10 % of the
/// lifetime, at most five minutes (a day-long token is renewed 5 min early; a
/// 10-second test token 1 s early).
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_REFRESH_MARGIN)
}

/// A token with the moment it was obtained.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub(crate) token: AccessToken,
    obtained: Instant,
    lifetime: Duration,
}

impl CachedToken {
    pub(crate) fn new(token: AccessToken, obtained: Instant, lifetime: Duration) -> Self {
        Self { token, obtained, lifetime }
    }

    /// The moment after which the token is refreshed.
    pub(crate) fn refresh_at(&self) -> Instant {
        self.obtained + self.lifetime.saturating_sub(refresh_margin(self.lifetime))
    }

    /// True while the token can still be used without a refresh.
    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at()
    }
}

/// Turns Symbl's `expiresIn` (seconds) into a lifetime: missing means Symbl's
/// documented default of a day; nonsense (negative, not finite) means "refresh
/// every time".
pub(crate) fn lifetime_from_expires_in(expires_in: Option<f64>) -> Duration {
    match expires_in {
        None => Duration::from_secs(86_400),
        Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s.min(10.0 * 365.0 * 86_400.0)),
        Some(_) => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_ten_percent_capped_at_five_minutes() {
        assert_eq!(refresh_margin(Duration::from_secs(86_400)), Duration::from_secs(300));
        assert_eq!(refresh_margin(Duration::from_secs(600)), Duration::from_secs(60));
        assert_eq!(refresh_margin(Duration::from_secs(1)), Duration::from_millis(100));
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_token_is_refreshed_before_it_expires() {
        let t0 = Instant::now();
        let day = CachedToken::new(AccessToken::new("t"), t0, Duration::from_secs(86_400));
        assert!(day.is_fresh(t0));
        assert!(day.is_fresh(t0 + Duration::from_secs(86_400 - 301)));
        assert!(!day.is_fresh(t0 + Duration::from_secs(86_400 - 300)));
        assert!(!day.is_fresh(t0 + Duration::from_secs(86_400)));

        let short = CachedToken::new(AccessToken::new("t"), t0, Duration::from_secs(10));
        assert!(short.is_fresh(t0 + Duration::from_millis(8_999)));
        assert!(!short.is_fresh(t0 + Duration::from_secs(9)));

        let zero = CachedToken::new(AccessToken::new("t"), t0, Duration::ZERO);
        assert!(!zero.is_fresh(t0));
    }

    #[test]
    fn expires_in_is_read_defensively() {
        assert_eq!(lifetime_from_expires_in(None), Duration::from_secs(86_400));
        assert_eq!(lifetime_from_expires_in(Some(2.5)), Duration::from_millis(2_500));
        assert_eq!(lifetime_from_expires_in(Some(-1.0)), Duration::ZERO);
        assert_eq!(lifetime_from_expires_in(Some(f64::INFINITY)), Duration::ZERO);
    }

    #[test]
    fn debug_hides_the_token() {
        assert_eq!(format!("{:?}", AccessToken::new("abc.def")), "AccessToken(<redacted>)");
    }
}
