//! `GET /board`: the supervisors' board in the browser. Plain HTML, CSS and
//! JavaScript built into the binary (no build step, nothing fetched from
//! elsewhere). The page holds no data: it asks for the admin token, keeps it
//! in the tab's session storage and reads the token-protected board stream
//! (`/api/v1/board/events`) and conversation streams with it.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../web/board.html");
const SCRIPT: &str = include_str!("../web/board.js");
const STYLE: &str = crate::analyze::render::html::STYLE;

/// Only this origin's own files and API; no framing, no referrer.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                      base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (axum::http::header::CONTENT_SECURITY_POLICY, POLICY),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (axum::http::header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `GET /board`
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// `GET /board/board.js`
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /board/style.css`
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for text in [PAGE, SCRIPT, STYLE] {
            for remote in ["http://", "https://", "//cdn", "@import", "url("] {
                let text = text.replace("http://www.w3.org/2000/svg", "");
                assert!(!text.contains(remote), "{remote}");
            }
        }
        assert!(PAGE.contains("src=\"/board/board.js\"") && PAGE.contains("href=\"/board/style.css\""));
        // Every input has its label.
        assert!(PAGE.contains("<label for=\"token\">") && PAGE.contains("id=\"token\""));
        assert!(SCRIPT.contains("sessionStorage") && !SCRIPT.contains("localStorage"));
    }
}
