//! Same-origin checks for requests that act on a browser's session (its
//! WebSocket, job controls, sign-in). Browsers always send `Origin` on
//! these; a page on another site that tries to use a visitor's session is
//! refused. Clients that are not browsers send no `Origin` and are let
//! through: they carry no one else's cookie.

use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;

/// Whether `Origin`, if sent, names the host the request was sent to.
pub fn is_same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin_host, host) {
        (Some(origin), Some(host)) => origin.eq_ignore_ascii_case(host),
        _ => false,
    }
}

/// [`is_same_origin`] as a request guard.
pub fn require_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if is_same_origin(headers) {
        return Ok(());
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned())
        .unwrap_or_default();
    tracing::warn!(%origin, "refused a cross-origin request");
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "foreign_origin",
        format!("Requests from {origin:?} are not allowed: open the page on this server."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().expect("host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().expect("origin"));
        }
        h
    }

    #[test]
    fn only_the_page_own_origin_passes() {
        assert!(is_same_origin(&headers(None, "127.0.0.1:8080")));
        assert!(is_same_origin(&headers(
            Some("http://127.0.0.1:8080"),
            "127.0.0.1:8080"
        )));
        assert!(is_same_origin(&headers(
            Some("https://Video.Example"),
            "video.example"
        )));
        for foreign in [
            "http://evil.example",
            "http://127.0.0.1:9999",
            "null",
            "http://127.0.0.1:8080.evil.example",
        ] {
            assert!(
                !is_same_origin(&headers(Some(foreign), "127.0.0.1:8080")),
                "{foreign}"
            );
        }
    }
}
