//! Who is asking: every browser gets a signed session cookie naming its
//! owner identity, so each has its own private queue without signing up.
//!
//! An identity is `anon:<random>` for a browser, or `user:<name>` once it
//! signs in to an account (when accounts are enabled). The cookie is signed
//! with a key kept in the data folder (`session.key`), so it cannot be
//! forged and survives restarts. The identity is what the portal records as
//! an upload's owner and sends to the encoder as the Carbon `User`.
//! This module knows nothing about jobs or accounts' passwords.

use std::path::Path;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};

use super::Portal;

/// The session cookie's name.
pub const COOKIE: &str = "videoshare_session";

/// How long a browser keeps its session (and so its queue): a year.
const COOKIE_DAYS: i64 = 365;

/// Longest account name, in characters.
pub const MAX_NAME: usize = 32;

/// Whose jobs these are: a browser session or an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    /// A new browser identity nobody else can guess.
    pub fn anonymous() -> Owner {
        Owner(format!("anon:{}", uuid::Uuid::new_v4().simple()))
    }

    /// The identity of an account (`name` already checked).
    pub fn account(name: &str) -> Owner {
        Owner(format!("user:{name}"))
    }

    /// Reads an identity as stored in a cookie or a record.
    pub fn parse(text: &str) -> Option<Owner> {
        let valid = match text.split_once(':') {
            Some(("anon", id)) => id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            Some(("user", name)) => check_account_name(name).is_ok(),
            _ => false,
        };
        valid.then(|| Owner(text.to_owned()))
    }

    /// The account's name, if this identity is an account.
    pub fn account_name(&self) -> Option<&str> {
        self.0.strip_prefix("user:")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account name: 1–32 letters, digits, `-`, `_` or `.`, so it is safe in
/// a cookie, a URL, a log line and a Carbon attribute.
pub fn check_account_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(format!("A user name has 1 to {MAX_NAME} characters."));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("A user name may use only letters, digits, '-', '_' and '.'.".to_owned());
    }
    Ok(())
}

/// The signing key, loaded from (or created in) the data folder.
#[derive(Clone)]
pub struct SessionKey(pub Key);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// Reads `path`, or writes a new random key there (readable by this
    /// user only) when there is none yet.
    pub fn load_or_create(path: &Path) -> anyhow::Result<SessionKey> {
        match std::fs::read(path) {
            Ok(bytes) => Key::try_from(bytes.as_slice())
                .map(SessionKey)
                .map_err(|e| anyhow::anyhow!("{} is not a session key: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Key::generate();
                crate::fsutil::write_new(path, key.master())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                restrict_to_owner(path)?;
                // Another process may have won the race: use what is there.
                Self::load_or_create(path)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

fn restrict_to_owner(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))
}

/// The cookie that names `owner`.
pub fn cookie(owner: &Owner) -> Cookie<'static> {
    Cookie::build((COOKIE, owner.as_str().to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time_days(COOKIE_DAYS))
        .build()
}

fn time_days(days: i64) -> cookie::time::Duration {
    cookie::time::Duration::days(days)
}

/// The owner a request's cookie names, if it carries a valid one.
pub fn owner_of(headers: &HeaderMap, key: &SessionKey) -> Option<Owner> {
    let jar = SignedCookieJar::from_headers(headers, key.0.clone());
    jar.get(COOKIE).and_then(|c| Owner::parse(c.value()))
}

/// The response part that sets `owner` as this browser's session.
pub fn set_session(key: &SessionKey, owner: &Owner) -> SignedCookieJar {
    SignedCookieJar::new(key.0.clone()).add(cookie(owner))
}

/// Middleware: every request carries an [`Owner`] extension; a browser
/// without a valid cookie gets a new anonymous identity and its cookie.
pub async fn identify(State(portal): State<Portal>, mut request: Request, next: Next) -> Response {
    let key = &portal.inner.config.session_key;
    let known = owner_of(request.headers(), key);
    let owner = known.clone().unwrap_or_else(Owner::anonymous);
    request.extensions_mut().insert(owner.clone());
    let response = next.run(request).await;
    // A handler that set the session itself (sign in, sign out) wins.
    if known.is_some() || response.headers().contains_key(header::SET_COOKIE) {
        return response;
    }
    (set_session(key, &owner), response).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_only_when_well_formed() {
        let anon = Owner::anonymous();
        assert_eq!(Owner::parse(anon.as_str()), Some(anon.clone()));
        assert_eq!(anon.account_name(), None);
        let ann = Owner::account("ann");
        assert_eq!(Owner::parse("user:ann"), Some(ann.clone()));
        assert_eq!(ann.account_name(), Some("ann"));
        for bad in [
            "",
            "anon:",
            "anon:xyz",
            "user:",
            "user:a b",
            "user:<script>",
            "admin:x",
            "ann",
        ] {
            assert_eq!(Owner::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn account_names_are_checked() {
        assert!(check_account_name("ann.lee-2_x").is_ok());
        assert!(check_account_name("").is_err());
        assert!(check_account_name(&"a".repeat(33)).is_err());
        assert!(check_account_name("Zoë").is_err());
        assert!(check_account_name("a/b").is_err());
    }

    #[test]
    fn the_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.key");
        let first = SessionKey::load_or_create(&path).expect("create");
        let again = SessionKey::load_or_create(&path).expect("load");
        assert_eq!(first.0.master(), again.0.master());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
