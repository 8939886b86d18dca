//! `GET /ws`: live updates for browsers.
//!
//! A browser asks to watch job GUIDs; it then receives each change of those
//! jobs and every change of the library. The poller publishes on one
//! broadcast channel (the hub); each socket filters what it forwards.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::Portal;
use super::error::ApiError;
use super::jobs::JobView;
use super::pages::VideoCard;
use crate::carbon::Guid;

/// How many jobs one socket may watch.
const MAX_WATCHED: usize = 256;

/// What the poller and the upload path publish.
#[derive(Debug, Clone)]
pub enum HubEvent {
    Job(JobView),
    Videos(Arc<Vec<VideoCard>>),
}

/// Messages to the browser.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Job {
        job: &'a JobView,
    },
    Videos {
        videos: &'a [VideoCard],
    },
    Error {
        /// `unknown_job`, `bad_guid`, `too_many_watched` or `bad_message`.
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
    Watch { guid: String },
    Unwatch { guid: String },
}

/// WebSockets one client address may hold at once: enough for a user's
/// tabs, not for one host to exhaust the server.
pub const MAX_SOCKETS_PER_CLIENT: usize = 16;

pub async fn handler(
    ws: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(portal): State<Portal>,
) -> Response {
    let Some(held) = portal.inner.sockets.take(peer.ip()) else {
        tracing::warn!(%peer, "refused a WebSocket: too many from this client");
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sockets",
            format!(
                "This client already has {MAX_SOCKETS_PER_CLIENT} live connections; close some \
                 tabs and reload."
            ),
        )
        .into_response();
    };
    ws.on_upgrade(move |socket| async move {
        let clients = portal.config().metrics.websocket_clients.clone();
        clients.inc();
        session(socket, portal).await;
        clients.dec();
        drop(held);
    })
}

/// Live WebSockets per client address.
#[derive(Debug, Default)]
pub struct SocketCounts {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One socket counted against its client; uncounted on drop.
pub struct Held {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl SocketCounts {
    /// Counts a new socket for `ip`, unless it already has the most allowed.
    fn take(&self, ip: IpAddr) -> Option<Held> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(ip).or_default();
        if *count >= MAX_SOCKETS_PER_CLIENT {
            return None;
        }
        *count += 1;
        Some(Held {
            counts: self.held.clone(),
            ip,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

async fn send(socket: &mut WebSocket, message: &ServerMessage<'_>) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => true,
    }
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

/// Sends the stored state of `guid`. Returns whether the socket is still
/// there and whether the job may still change (is worth watching).
async fn send_current(socket: &mut WebSocket, portal: &Portal, guid: Guid) -> (bool, bool) {
    match portal.inner.uploads.get(guid).await {
        Ok(Some(upload)) => {
            let job = JobView::from(&upload);
            (
                send(socket, &ServerMessage::Job { job: &job }).await,
                !job.done,
            )
        }
        Ok(None) => {
            let text = guid.to_string();
            let message = format!("no upload has job {guid}");
            (
                send_error(socket, "unknown_job", Some(&text), message).await,
                false,
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read uploads");
            (true, true)
        }
    }
}

async fn session(mut socket: WebSocket, portal: Portal) {
    let mut events = portal.inner.hub.subscribe();
    let mut watched: HashSet<Guid> = HashSet::new();
    let shutdown = portal.inner.shutdown.clone();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { break };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if !on_client_message(&mut socket, &portal, &mut watched, &text).await {
                    break;
                }
            }
            event = events.recv() => {
                let alive = match event {
                    Ok(HubEvent::Job(job)) if watched.contains(&job.guid) => {
                        if job.done {
                            // Nothing more will come: free the place.
                            watched.remove(&job.guid);
                        }
                        send(&mut socket, &ServerMessage::Job { job: &job }).await
                    }
                    Ok(HubEvent::Job(_)) => true,
                    Ok(HubEvent::Videos(videos)) => send(&mut socket, &ServerMessage::Videos { videos: &videos }).await,
                    Err(RecvError::Lagged(missed)) => {
                        // Too slow to keep up: resend the latest state instead.
                        tracing::debug!(missed, "websocket client lagged");
                        let mut alive = true;
                        for guid in watched.clone() {
                            let (open, active) = send_current(&mut socket, &portal, guid).await;
                            alive &= open;
                            if !active {
                                watched.remove(&guid);
                            }
                        }
                        alive
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
    watched: &mut HashSet<Guid>,
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
    let (ClientMessage::Watch { guid: raw } | ClientMessage::Unwatch { guid: raw }) = &message;
    let guid: Guid = match raw.parse() {
        Ok(g) => g,
        Err(e) => {
            return send_error(socket, "bad_guid", Some(raw), e.to_string()).await;
        }
    };
    match message {
        ClientMessage::Watch { .. } if watched.len() >= MAX_WATCHED && !watched.contains(&guid) => {
            let message = format!("a connection may watch at most {MAX_WATCHED} jobs");
            send_error(socket, "too_many_watched", Some(raw), message).await
        }
        ClientMessage::Watch { .. } => {
            // Subscribe before reading the state, so no change falls between.
            watched.insert(guid);
            let (open, active) = send_current(socket, portal, guid).await;
            if !active {
                watched.remove(&guid);
            }
            open
        }
        ClientMessage::Unwatch { .. } => {
            watched.remove(&guid);
            true
        }
    }
}
