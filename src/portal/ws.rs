//! `GET /ws`: live updates for browsers.
//!
//! A socket belongs to the session that opened it: on connect it receives
//! that session's queue, then every change of those jobs (and only those)
//! and every change of the library. The poller publishes on one broadcast
//! channel (the hub); each socket filters what it forwards. A page from
//! another origin cannot open one, and asking about another session's job
//! is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::Portal;
use super::error::ApiError;
use super::jobs::JobView;
use super::pages::VideoCard;
use crate::owner::Owner;

/// What the poller and the upload path publish.
#[derive(Debug, Clone)]
pub enum HubEvent {
    Job(Box<JobView>),
    Videos(Arc<Vec<VideoCard>>),
}

/// Messages to the browser.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// The session's whole queue (on connect, and after falling behind).
    Queue {
        jobs: &'a [JobView],
    },
    Job {
        job: &'a JobView,
    },
    Videos {
        videos: &'a [VideoCard],
    },
    Error {
        /// `unknown_job`, `bad_guid` or `bad_message`.
        code: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        guid: Option<&'a str>,
        message: String,
    },
}

/// Messages from the browser.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Asks for one job's current state (only the session's own).
    Watch { guid: String },
    /// Accepted for older pages; a socket follows its session's jobs anyway.
    Unwatch { guid: String },
}

/// WebSockets one client address may hold at once unless configured
/// (`--ws-per-client`): enough for a user's tabs, not for one host to
/// exhaust the server.
pub const MAX_SOCKETS_PER_CLIENT: usize = 16;

/// Largest message (and frame) a browser may send: its requests are a few
/// dozen bytes of JSON.
const MAX_MESSAGE: usize = 4 * 1024;

/// How long one message may take to go out before the socket is dropped.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn handler(
    ws: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(portal): State<Portal>,
    Extension(owner): Extension<Owner>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = super::origin::require_same_origin(&headers) {
        return refused.into_response();
    }
    let limit = portal.config().ws_per_client;
    let Ok(held) = portal.inner.sockets.take(peer.ip(), limit, usize::MAX) else {
        tracing::warn!(%peer, "refused a WebSocket: too many from this client");
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sockets",
            format!(
                "This client already has {limit} live connections; close some \
                 tabs and reload."
            ),
        )
        .into_response();
    };
    // The browser sends only small JSON requests.
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let clients = portal.config().metrics.websocket_clients.clone();
            clients.inc();
            session(socket, portal, owner).await;
            clients.dec();
            drop(held);
        })
}

/// Sends `message`; `false` if the socket is gone, or stuck: a browser
/// that takes no message for [`SEND_TIMEOUT`] is dropped rather than
/// holding its task and buffers for ever.
async fn send(socket: &mut WebSocket, message: &ServerMessage<'_>) -> bool {
    let Ok(text) = serde_json::to_string(message) else {
        return true;
    };
    let sent = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await;
    matches!(sent, Ok(Ok(())))
}

/// Sends an error message; `false` if the socket is gone.
async fn send_error(
    socket: &mut WebSocket,
    code: &'static str,
    guid: Option<&str>,
    message: String,
) -> bool {
    send(
        socket,
        &ServerMessage::Error {
            code,
            guid,
            message,
        },
    )
    .await
}

/// Sends the session's queue; `false` if the socket is gone.
async fn send_queue(socket: &mut WebSocket, portal: &Portal, owner: &Owner) -> bool {
    match portal.queue_of(owner).await {
        Ok(jobs) => send(socket, &ServerMessage::Queue { jobs: &jobs }).await,
        Err(e) => {
            tracing::error!(error = ?e, "cannot read a queue");
            true
        }
    }
}

async fn session(mut socket: WebSocket, portal: Portal, owner: Owner) {
    let mut events = portal.inner.hub.subscribe();
    let shutdown = portal.inner.shutdown.clone();
    // Subscribed first, so no change falls between the snapshot and the feed.
    if !send_queue(&mut socket, &portal, &owner).await {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { break };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if !on_client_message(&mut socket, &portal, &owner, &text).await {
                    break;
                }
            }
            event = events.recv() => {
                let alive = match event {
                    Ok(HubEvent::Job(job)) if job.owner.as_ref() == Some(&owner) => {
                        send(&mut socket, &ServerMessage::Job { job: &job }).await
                    }
                    Ok(HubEvent::Job(_)) => true,
                    Ok(HubEvent::Videos(videos)) => {
                        let visible = portal.visible_cards(&videos, &owner);
                        send(&mut socket, &ServerMessage::Videos { videos: &visible }).await
                    }
                    Err(RecvError::Lagged(missed)) => {
                        // Too slow to keep up: resend the latest state instead.
                        tracing::debug!(missed, "websocket client lagged");
                        send_queue(&mut socket, &portal, &owner).await
                    }
                    Err(RecvError::Closed) => false,
                };
                if !alive {
                    break;
                }
            }
            _ = shutdown.cancelled() => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: axum::extract::ws::close_code::AWAY,
                        reason: Utf8Bytes::from_static("server shutting down"),
                    })))
                    .await;
                break;
            }
        }
    }
}

/// Handles one browser message; `false` if the socket is gone.
async fn on_client_message(
    socket: &mut WebSocket,
    portal: &Portal,
    owner: &Owner,
    text: &str,
) -> bool {
    let message = match serde_json::from_str::<ClientMessage>(text) {
        Ok(m) => m,
        Err(e) => {
            return send_error(
                socket,
                "bad_message",
                None,
                format!("unreadable message: {e}"),
            )
            .await;
        }
    };
    let ClientMessage::Watch { guid: raw } = message else {
        return true;
    };
    match portal.owned_upload(owner, &raw).await {
        Ok(upload) => {
            let job = portal.view(&upload).await;
            send(socket, &ServerMessage::Job { job: &job }).await
        }
        Err(refused) => send_error(socket, refused.code, Some(&raw), refused.message).await,
    }
}
