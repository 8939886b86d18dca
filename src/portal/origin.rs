//! Same-origin checks for requests that act on a browser's session.
//!
//! [`guard`] runs before the session is read: every state-changing request
//! (any method but GET, HEAD, OPTIONS) that a browser says came from another
//! site (`Sec-Fetch-Site: cross-site` or `same-site`) or whose `Origin` is
//! not this host gets 403 `foreign_origin`, and no cookie. The WebSocket
//! (a GET) checks `Origin` itself. Clients that are not browsers send
//! neither header and are let through: they carry no one else's cookie.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Whether a browser says this request came from a page of another site.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("cross-site"));
    // `none` is the user's own doing (typed address, bookmark).
    let foreign_fetch = !matches!(fetch_site, None | Some("same-origin") | Some("none"));
    foreign_fetch || !is_same_origin(headers)
}

/// Middleware: refuses a state-changing request from another site before
/// anything else (the session included) sees it.
pub async fn guard(request: Request, next: Next) -> Response {
    if !request.method().is_safe() && is_cross_site(request.headers()) {
        return refuse(request.headers()).into_response();
    }
    next.run(request).await
}

/// Whether `Origin`, if sent, names the host the request was sent to.
pub fn is_same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    let Some(origin) = origin_host else {
        return false;
    };
    // Behind a reverse proxy that rewrites `Host`, the browser's host is in
    // `X-Forwarded-Host` (a header no page on another site can add without
    // a CORS preflight, which is never granted).
    let forwarded = headers
        .get("x-forwarded-host")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(',').next())
        .map(str::trim);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    [host, forwarded]
        .into_iter()
        .flatten()
        .any(|host| origin.eq_ignore_ascii_case(host))
}

/// [`is_same_origin`] as a request guard.
pub fn require_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if is_same_origin(headers) {
        return Ok(());
    }
    Err(refuse(headers))
}

fn refuse(headers: &HeaderMap) -> ApiError {
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned())
        .unwrap_or_default();
    tracing::warn!(%origin, "refused a cross-origin request");
    ApiError::new(
        StatusCode::FORBIDDEN,
        "foreign_origin",
        format!("Requests from {origin:?} are not allowed: open the page on this server."),
    )
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

    #[test]
    fn fetch_metadata_from_another_site_is_foreign() {
        let with_site = |site: &str| {
            let mut h = headers(None, "127.0.0.1:8080");
            h.insert("sec-fetch-site", site.parse().expect("site"));
            h
        };
        assert!(!is_cross_site(&with_site("same-origin")));
        assert!(!is_cross_site(&with_site("none")));
        assert!(is_cross_site(&with_site("cross-site")));
        assert!(is_cross_site(&with_site("same-site")));
        assert!(!is_cross_site(&headers(None, "127.0.0.1:8080")));
        assert!(is_cross_site(&headers(
            Some("http://evil.example"),
            "127.0.0.1:8080"
        )));
    }

    #[test]
    fn behind_a_proxy_the_forwarded_host_counts() {
        let mut h = headers(Some("https://video.example"), "127.0.0.1:8080");
        assert!(!is_same_origin(&h));
        h.insert("x-forwarded-host", "video.example".parse().expect("host"));
        assert!(is_same_origin(&h));
    }
}
