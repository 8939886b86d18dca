//! Optional accounts (`--accounts`): register, sign in, sign out.
//!
//! Without an account every browser is its own anonymous user. With one, a
//! person sees the same queue from any browser. Registering or signing in
//! moves the browser's anonymous uploads into the account, so nothing
//! uploaded before signing in is lost. Passwords are hashed with argon2id
//! (the crate's defaults: 19 MiB, 2 passes) off the async threads.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::Portal;
use super::error::ApiError;
use super::session::{Owner, check_account_name, set_session};

/// Shortest and longest accepted password, in characters.
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=256;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    nav: super::pages::Nav,
    signed_in: Option<&'a str>,
    error: Option<String>,
    name: String,
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "accounts_disabled",
        "Accounts are not enabled on this server: your browser keeps its own private queue.",
    )
}

fn render(
    portal: &Portal,
    owner: &Owner,
    status: StatusCode,
    error: Option<String>,
    name: String,
) -> Response {
    let page = AccountPage {
        nav: super::pages::Nav::new(portal, owner, "account"),
        signed_in: owner.account_name(),
        error,
        name,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// `GET /account`: the sign-in and register forms, or who is signed in.
pub async fn page(State(portal): State<Portal>, Extension(owner): Extension<Owner>) -> Response {
    if !portal.config().accounts {
        return disabled().into_response();
    }
    render(&portal, &owner, StatusCode::OK, None, String::new())
}

/// `POST /account/register`.
pub async fn register(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    if let Err(refused) = guard(&portal, &headers) {
        return refused.into_response();
    }
    let refuse =
        |status, why: String| render(&portal, &owner, status, Some(why), form.name.clone());
    if let Err(why) = check_account_name(&form.name) {
        return refuse(StatusCode::BAD_REQUEST, why);
    }
    if !PASSWORD_CHARS.contains(&form.password.chars().count()) {
        let why = format!(
            "A password has {} to {} characters.",
            PASSWORD_CHARS.start(),
            PASSWORD_CHARS.end()
        );
        return refuse(StatusCode::BAD_REQUEST, why);
    }
    let password = form.password.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await;
    let hash = match hashed {
        Ok(Ok(hash)) => hash,
        Ok(Err(e)) => return ApiError::internal(e).into_response(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    match portal.inner.accounts.create(&form.name, &hash).await {
        Ok(true) => {}
        Ok(false) => {
            let why = format!("The name {:?} is taken: choose another.", form.name);
            return refuse(StatusCode::CONFLICT, why);
        }
        Err(e) => return ApiError::internal(e).into_response(),
    }
    tracing::info!(name = %form.name, "account registered");
    sign_in(&portal, &owner, &form.name).await
}

/// `POST /account/login`.
pub async fn login(
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    if let Err(refused) = guard(&portal, &headers) {
        return refused.into_response();
    }
    let wrong = || {
        render(
            &portal,
            &owner,
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password.".to_owned()),
            form.name.clone(),
        )
    };
    let found = match portal.inner.accounts.find(&form.name).await {
        Ok(found) => found,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let Some((name, hash)) = found else {
        return wrong();
    };
    let password = form.password.clone();
    let matches = tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false);
    if !matches {
        tracing::info!(name = %form.name, "failed sign-in");
        return wrong();
    }
    sign_in(&portal, &owner, &name).await
}

/// `POST /account/logout`: the browser becomes a new anonymous user.
pub async fn logout(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    if let Err(refused) = guard(&portal, &headers) {
        return refused.into_response();
    }
    let key = &portal.config().session_key;
    (set_session(key, &Owner::anonymous()), Redirect::to("/")).into_response()
}

fn guard(portal: &Portal, headers: &HeaderMap) -> Result<(), ApiError> {
    if !portal.config().accounts {
        return Err(disabled());
    }
    super::origin::require_same_origin(headers)
}

/// Makes this browser `name`'s, bringing its anonymous uploads along.
async fn sign_in(portal: &Portal, owner: &Owner, name: &str) -> Response {
    let account = Owner::account(name);
    if owner.account_name().is_none() {
        match portal
            .inner
            .uploads
            .transfer(owner.as_str(), account.as_str())
            .await
        {
            Ok(0) => {}
            Ok(moved) => tracing::info!(name, moved, "anonymous uploads moved into an account"),
            Err(e) => return ApiError::internal(e).into_response(),
        }
    }
    tracing::info!(name, "signed in");
    let key = &portal.config().session_key;
    (set_session(key, &account), Redirect::to("/")).into_response()
}
