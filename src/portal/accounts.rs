//! Optional accounts (`--accounts`): register, sign in, sign out.
//!
//! Without an account every browser is its own anonymous user. With one, a
//! person sees the same queue from any browser. Registering or signing in
//! moves the browser's anonymous uploads into the account, so nothing
//! uploaded before signing in is lost — uploads still arriving included.
//! Passwords are hashed with argon2id (the crate's defaults: 19 MiB, 2
//! passes) off the async threads, two at a time; sign-in attempts are
//! limited per address and per name (429 with `Retry-After`). Signing in
//! always starts a fresh session; signing out ends it on the server;
//! "sign out everywhere" and a password change end the others.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use askama::Template;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::Portal;
use super::error::ApiError;
use super::session::Session;
use crate::owner::{Owner, check_account_name};

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
    Extension(session): Extension<Session>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<Credentials>,
) -> Response {
    if let Err(refused) = guard(&portal, peer, &form.name) {
        return refused.into_response();
    }
    let owner = &session.owner;
    let refuse = |status, why: String| render(&portal, owner, status, Some(why), form.name.clone());
    if let Err(why) = check_account_name(&form.name) {
        return refuse(StatusCode::BAD_REQUEST, why.to_string());
    }
    if let Err(why) = check_password(&form.password) {
        return refuse(StatusCode::BAD_REQUEST, why.to_string());
    }
    let hash = match hash_password(&portal, form.password.clone()).await {
        Ok(hash) => hash,
        Err(e) => return e.into_response(),
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
    sign_in(&portal, &session, &form.name).await
}

/// `POST /account/login`.
pub async fn login(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<Credentials>,
) -> Response {
    if let Err(refused) = guard(&portal, peer, &form.name) {
        return refused.into_response();
    }
    match password_matches(&portal, &form.name, &form.password).await {
        Ok(Some(name)) => sign_in(&portal, &session, &name).await,
        Ok(None) => {
            tracing::info!(name = %form.name, %peer, "failed sign-in");
            wrong_password(&portal, &session.owner, form.name.clone())
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /account/logout`: this session ends; the browser becomes a new
/// anonymous user.
pub async fn logout(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
) -> Response {
    if !portal.config().accounts {
        return disabled().into_response();
    }
    end_this_session(&portal, &session, "/").await
}

/// Ends `session` and sends the browser, now anonymous, to `then`.
async fn end_this_session(portal: &Portal, session: &Session, then: &str) -> Response {
    match portal.sessions().sign_out(session).await {
        Ok(cookie) => (cookie, Redirect::to(then)).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// `POST /account/logout-everywhere`: every session of the account ends,
/// this one too.
pub async fn logout_everywhere(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
) -> Response {
    if !portal.config().accounts {
        return disabled().into_response();
    }
    let Some(name) = session.owner.account_name() else {
        return Redirect::to("/account").into_response();
    };
    let ended = match portal.sessions().end_all(name).await {
        Ok(ended) => ended,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    tracing::info!(name, ended, "signed out everywhere");
    end_this_session(&portal, &session, "/account").await
}

#[derive(Debug, Deserialize)]
pub struct PasswordChange {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
}

/// `POST /account/password`: a new password; every other session of the
/// account ends and this browser gets a fresh session.
pub async fn change_password(
    State(portal): State<Portal>,
    Extension(session): Extension<Session>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<PasswordChange>,
) -> Response {
    let owner = &session.owner;
    let Some(name) = owner.account_name().map(str::to_owned) else {
        return Redirect::to("/account").into_response();
    };
    if let Err(refused) = guard(&portal, peer, &name) {
        return refused.into_response();
    }
    let refuse = |status, why: String| render(&portal, owner, status, Some(why), String::new());
    match password_matches(&portal, &name, &form.current).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "The current password is wrong.".to_owned(),
            );
        }
        Err(e) => return e.into_response(),
    }
    if let Err(why) = check_password(&form.new) {
        return refuse(StatusCode::BAD_REQUEST, why.to_string());
    }
    let hash = match hash_password(&portal, form.new.clone()).await {
        Ok(hash) => hash,
        Err(e) => return e.into_response(),
    };
    let changed = portal.inner.accounts.set_password(&name, &hash).await;
    let ended = match changed {
        Ok(()) => portal.sessions().end_all(&name).await,
        Err(e) => Err(e),
    };
    match ended {
        Ok(ended) => tracing::info!(name, ended, "password changed; other sessions ended"),
        Err(e) => return ApiError::internal(e).into_response(),
    }
    sign_in(&portal, &session, &name).await
}

/// Accounts must be on, and the address and the name must have attempts
/// left.
fn guard(portal: &Portal, peer: SocketAddr, name: &str) -> Result<(), ApiError> {
    if !portal.config().accounts {
        return Err(disabled());
    }
    portal.inner.sign_in.attempt(peer.ip(), name)
}

/// A password too short or too long; the message is for the person who
/// typed it.
#[derive(Debug, thiserror::Error)]
#[error("A password has {} to {} characters.", PASSWORD_CHARS.start(), PASSWORD_CHARS.end())]
struct BadPasswordLength;

fn check_password(password: &str) -> Result<(), BadPasswordLength> {
    if PASSWORD_CHARS.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(BadPasswordLength)
    }
}

/// The argon2id hash of `password`, computed a few at a time.
async fn hash_password(portal: &Portal, password: String) -> Result<String, ApiError> {
    portal
        .inner
        .sign_in
        .hash(move || {
            argon2::Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
        })
        .await?
        .map_err(ApiError::internal)
}

/// The account's name as registered, if `password` is its password.
async fn password_matches(
    portal: &Portal,
    name: &str,
    password: &str,
) -> Result<Option<String>, ApiError> {
    let found = portal
        .inner
        .accounts
        .find(name)
        .await
        .map_err(ApiError::internal)?;
    let Some((name, hash)) = found else {
        return Ok(None);
    };
    let password = password.to_owned();
    let matches = portal
        .inner
        .sign_in
        .hash(move || {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await?;
    Ok(matches.then_some(name))
}

fn wrong_password(portal: &Portal, owner: &Owner, name: String) -> Response {
    render(
        portal,
        owner,
        StatusCode::UNAUTHORIZED,
        Some("Wrong user name or password.".to_owned()),
        name,
    )
}

/// Makes this browser `name`'s with a fresh session, bringing its
/// anonymous uploads (finished, queued and still arriving) along.
async fn sign_in(portal: &Portal, session: &Session, name: &str) -> Response {
    let account = Owner::account(name);
    let owner = &session.owner;
    if owner.account_name().is_none() {
        // First, so an upload that lands from now on is recorded as the
        // account's; then what is recorded already moves.
        portal.inner.moves.record(owner, &account);
        let (from, to) = (owner, &account);
        let moved = match portal.inner.uploads.transfer(from, to).await {
            Ok(moved) => portal
                .inner
                .tus
                .transfer(from, to)
                .await
                .map(|tus| moved + tus),
            Err(e) => Err(e),
        };
        match moved {
            Ok(0) => {}
            Ok(moved) => tracing::info!(name, moved, "anonymous uploads moved into an account"),
            Err(e) => return ApiError::internal(e).into_response(),
        }
    }
    match portal.sessions().sign_in(name, session).await {
        Ok(cookie) => {
            tracing::info!(name, "signed in");
            (cookie, Redirect::to("/")).into_response()
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}
