//! Who is asking: every browser gets a signed session cookie naming its
//! owner identity, so each has its own private queue without signing up.
//!
//! An identity is `anon:<random>` for a browser, or `user:<name>` once it
//! signs in to an account (when accounts are enabled). The identity is what
//! the portal records as an upload's owner and sends to the encoder as the
//! Carbon `User`.
//!
//! The cookie is signed with a key kept in the data folder ([`keys`]), so it
//! cannot be forged. An anonymous browser's cookie is its identity; a
//! signed-in browser's cookie names a server-side session row, so signing
//! out, "sign out everywhere" and a password change end sessions for real,
//! copied cookies included. Every cookie lasts `--session-days` (14) since
//! its last use: it is issued again (sliding) at most once an hour.
//! This module knows nothing about jobs or accounts' passwords.

pub mod keys;

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};

use super::Portal;
use crate::owner::Owner;
use crate::store::SessionStore;
pub use keys::SessionKeys;

/// The session cookie's name.
pub const COOKIE: &str = "videoshare_session";

/// How long an unused session lasts unless configured (`--session-days`).
pub const DEFAULT_SESSION_DAYS: u64 = 14;

/// A signed-in session's id: 32 random hex digits, the key of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    fn new() -> SessionId {
        SessionId(crate::owner::new_random_id())
    }

    fn parse(text: &str) -> Option<SessionId> {
        crate::owner::is_random_id(text).then(|| SessionId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a session cookie names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ticket {
    /// An anonymous browser: the cookie is the identity.
    Anonymous(Owner),
    /// A signed-in browser: a row in the sessions table.
    Account(SessionId),
}

/// A cookie's value: the ticket and when it was issued (unix seconds),
/// `anon:<hex>~<secs>` or `sid:<hex>~<secs>`. Cookies from before sessions
/// could end carry no time (`anon:<hex>`): they are renewed at once.
fn encode(ticket: &Ticket, issued: i64) -> String {
    match ticket {
        Ticket::Anonymous(owner) => format!("{owner}~{issued}"),
        Ticket::Account(id) => format!("sid:{}~{issued}", id.as_str()),
    }
}

fn decode(value: &str) -> Option<(Ticket, Option<i64>)> {
    let (body, issued) = match value.rsplit_once('~') {
        Some((body, secs)) => (body, Some(secs.parse().ok()?)),
        None => (value, None),
    };
    let ticket = match body.strip_prefix("sid:") {
        Some(id) => Ticket::Account(SessionId::parse(id)?),
        None => {
            let owner = Owner::parse(body)?;
            // An account is only ever named through a session row.
            if owner.account_name().is_some() {
                return None;
            }
            Ticket::Anonymous(owner)
        }
    };
    Some((ticket, issued))
}

fn unix_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The session of a request, as an extension next to its [`Owner`].
#[derive(Debug, Clone)]
pub struct Session {
    pub owner: Owner,
    /// The signed-in session, if any.
    pub id: Option<SessionId>,
    /// Whether cookies set in reply carry `Secure`.
    pub secure: bool,
}

/// Whether the browser reached us over https (directly or, as a reverse
/// proxy says in `X-Forwarded-Proto` / `Forwarded`, through one).
fn is_https(headers: &HeaderMap) -> bool {
    let says = |name: &str, f: &dyn Fn(&str) -> bool| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(f)
    };
    says("x-forwarded-proto", &|v| {
        v.split(',')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }) || says("forwarded", &|v| {
        v.split([';', ','])
            .any(|part| part.trim().eq_ignore_ascii_case("proto=https"))
    })
}

/// Issues, checks and ends session cookies.
#[derive(Clone)]
pub struct Sessions {
    keys: SessionKeys,
    store: SessionStore,
    /// A cookie (and a signed-in session) unused for this long has ended.
    lifetime: Duration,
    /// `--secure-cookies`: `Secure` on every cookie, https or not.
    always_secure: bool,
}

/// What a request's cookie turned out to be.
enum Checked {
    Valid {
        session: Session,
        renew: Option<Ticket>,
    },
    /// None, forged, expired or ended.
    Invalid,
    /// The store could not say: serve the request without touching the
    /// cookie (a passing database error must not sign anyone out).
    Unknown,
}

impl Sessions {
    pub fn new(
        keys: SessionKeys,
        store: SessionStore,
        lifetime: Duration,
        always_secure: bool,
    ) -> Self {
        Sessions {
            keys,
            store,
            lifetime,
            always_secure,
        }
    }

    fn lifetime_secs(&self) -> i64 {
        i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX)
    }

    /// A cookie older than this is issued again (sliding expiry): an hour,
    /// or half the lifetime when that is shorter.
    fn renew_after_secs(&self) -> i64 {
        (self.lifetime_secs() / 2).clamp(1, 3600)
    }

    /// The cookie's value and whether only the previous key verified it.
    fn read_cookie(&self, headers: &HeaderMap) -> Option<(String, bool)> {
        let read = |key: &Key| {
            SignedCookieJar::from_headers(headers, key.clone())
                .get(COOKIE)
                .map(|c| c.value().to_owned())
        };
        if let Some(value) = read(&self.keys.current) {
            return Some((value, false));
        }
        self.keys
            .previous
            .as_ref()
            .and_then(read)
            .map(|value| (value, true))
    }

    async fn check(&self, headers: &HeaderMap, secure: bool) -> Checked {
        let Some((value, old_key)) = self.read_cookie(headers) else {
            return Checked::Invalid;
        };
        let Some((ticket, issued)) = decode(&value) else {
            return Checked::Invalid;
        };
        let now = unix_secs();
        let age = issued.map_or(0, |at| now.saturating_sub(at));
        if age >= self.lifetime_secs() {
            return Checked::Invalid;
        }
        let stale = old_key || issued.is_none() || age >= self.renew_after_secs();
        let (owner, id) = match &ticket {
            Ticket::Anonymous(owner) => (owner.clone(), None),
            Ticket::Account(id) => {
                let lifetime_ms = self.lifetime_secs().saturating_mul(1000);
                match self.store.account(id.as_str(), lifetime_ms).await {
                    Ok(Some(account)) => (Owner::account(&account), Some(id.clone())),
                    Ok(None) => return Checked::Invalid,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read a session");
                        return Checked::Unknown;
                    }
                }
            }
        };
        if stale
            && let Some(id) = &id
            && let Err(e) = self.store.renew(id.as_str()).await
        {
            tracing::warn!(error = %e, "cannot renew a session");
        }
        Checked::Valid {
            session: Session { owner, id, secure },
            renew: stale.then_some(ticket),
        }
    }

    /// The response part that sets `ticket` as this browser's cookie.
    fn issue(&self, ticket: &Ticket, secure: bool) -> SignedCookieJar {
        let max_age = cookie::time::Duration::seconds(self.lifetime_secs());
        let cookie = Cookie::build((COOKIE, encode(ticket, unix_secs())))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(max_age)
            .build();
        SignedCookieJar::new(self.keys.current.clone()).add(cookie)
    }

    /// Starts a new session of `account` for this browser (always a fresh
    /// id: whatever id the browser had before is ended, so a planted
    /// cookie never becomes a signed-in one).
    pub async fn sign_in(
        &self,
        account: &str,
        before: &Session,
    ) -> Result<SignedCookieJar, crate::store::StoreError> {
        if let Some(old) = &before.id {
            self.store.end(old.as_str()).await?;
        }
        let id = SessionId::new();
        self.store.create(id.as_str(), account).await?;
        Ok(self.issue(&Ticket::Account(id), before.secure))
    }

    /// Ends this browser's session: it becomes a new anonymous browser.
    pub async fn sign_out(
        &self,
        session: &Session,
    ) -> Result<SignedCookieJar, crate::store::StoreError> {
        if let Some(id) = &session.id {
            self.store.end(id.as_str()).await?;
        }
        Ok(self.issue(&Ticket::Anonymous(Owner::anonymous()), session.secure))
    }

    /// Ends every session of `account`; returns how many ended.
    pub async fn end_all(&self, account: &str) -> Result<u64, crate::store::StoreError> {
        self.store.end_all(account, None).await
    }

    /// Forgets sessions unused for a whole lifetime (a timer calls this).
    pub async fn sweep(&self) {
        match self
            .store
            .sweep(self.lifetime_secs().saturating_mul(1000))
            .await
        {
            Ok(0) => {}
            Ok(ended) => tracing::info!(ended, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "cannot remove expired sessions"),
        }
    }
}

/// Middleware: every request carries an [`Owner`] and a [`Session`]
/// extension. A browser without a valid cookie gets a new anonymous
/// identity and its cookie — unless the request came from another site,
/// which never gets a cookie (a foreign page must not replace a visitor's
/// session with a new one).
pub async fn identify(State(portal): State<Portal>, mut request: Request, next: Next) -> Response {
    let sessions = portal.sessions();
    let headers = request.headers();
    let cross_site = super::origin::is_cross_site(headers);
    let secure = sessions.always_secure || is_https(headers);
    let (session, to_set) = match sessions.check(headers, secure).await {
        Checked::Valid { session, renew } => (session, renew),
        Checked::Invalid => {
            let owner = Owner::anonymous();
            let ticket = Ticket::Anonymous(owner.clone());
            (session_of(owner, secure), Some(ticket))
        }
        Checked::Unknown => (session_of(Owner::anonymous(), secure), None),
    };
    request.extensions_mut().insert(session.owner.clone());
    request.extensions_mut().insert(session);
    let response = next.run(request).await;
    // A handler that set the session itself (sign in, sign out) wins.
    if cross_site || response.headers().contains_key(header::SET_COOKIE) {
        return response;
    }
    match to_set {
        Some(ticket) => (sessions.issue(&ticket, secure), response).into_response(),
        None => response,
    }
}

fn session_of(owner: Owner, secure: bool) -> Session {
    Session {
        owner,
        id: None,
        secure,
    }
}
