//! The file service's HTTP side: the router, authentication of nodes, the
//! one error shape, and source downloads. Chunk uploads are in
//! `upload.rs`.
//!
//! Plain HTTP, meant for the farm's LAN: across untrusted networks it
//! belongs behind a TLS-terminating proxy. Every request names its node
//! (`X-Videoshare-Node`) and carries that node's token
//! (`Authorization: Bearer …`), checked by the [`Authority`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{Authority, ErrorBody, NODE_HEADER, SourceKind, UPLOAD_OFFSET, etag, hex_bytes};
use crate::carbon::Guid;
use crate::resumable::Writers;

/// How many uploads (PATCH requests) one node may have in flight at once.
pub const UPLOADS_PER_NODE: usize = 4;

/// Longest a request may take before it is answered 408 (a PATCH carries
/// a few MB; a download's body is streamed after its answer and is not
/// bounded by this).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The service's state, shared by its handlers.
pub(super) struct Service<A> {
    pub(super) authority: Arc<A>,
    /// Where uploads collect; on the same file system as every upload target.
    pub(super) incoming: PathBuf,
    /// One writer per uploaded file.
    pub(super) writers: Writers,
    /// Each node's uploads in flight.
    per_node: Mutex<HashMap<String, Arc<Semaphore>>>,
}

pub(super) type Shared<A> = Arc<Service<A>>;

impl<A> Service<A> {
    /// A place among `node`'s [`UPLOADS_PER_NODE`] uploads; 429 when full.
    pub(super) fn upload_slot(&self, node: &str) -> Result<OwnedSemaphorePermit, Refusal> {
        let slots = self
            .per_node
            .lock()
            .entry(node.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(UPLOADS_PER_NODE)))
            .clone();
        slots.try_acquire_owned().map_err(|_| {
            Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_uploads",
                format!("A node sends at most {UPLOADS_PER_NODE} files at once."),
            )
        })
    }
}

/// The node a request was authenticated as.
#[derive(Debug, Clone)]
pub(super) struct Node(pub(super) String);

/// The file service's routes. `incoming` collects uploads before they are
/// placed: it must be on the shared storage, on the same file system as
/// every folder [`Authority::upload_target`] names, so that placing is one
/// atomic rename.
pub fn routes<A: Authority>(authority: Arc<A>, incoming: PathBuf) -> Router {
    let service = Arc::new(Service {
        authority,
        incoming,
        writers: Writers::default(),
        per_node: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/farm/v1/jobs/{guid}/{which}", get(source::<A>))
        .merge(super::upload::routes::<A>())
        .layer(axum::middleware::from_fn_with_state(
            service.clone(),
            authenticate::<A>,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(service)
}

/// Serves `router` (from [`routes`]) on `listener` until `shutdown`, then
/// lets open requests finish. Connections from outside loopback and the
/// `allow` networks (`--file-service-allow`) are closed unanswered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    allow: Vec<ipnet::IpNet>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = Allowed {
        inner: listener,
        allow,
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// A listener that accepts only allowed clients.
struct Allowed {
    inner: tokio::net::TcpListener,
    allow: Vec<ipnet::IpNet>,
}

impl axum::serve::Listener for Allowed {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = axum::serve::Listener::accept(&mut self.inner).await;
            if crate::encoder::server::allowed(&self.allow, peer.ip()) {
                return (stream, peer);
            }
            tracing::warn!(%peer, "refused a file service connection from outside --file-service-allow");
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A refusal: a status and the JSON [`ErrorBody`], plus `Upload-Offset`
/// when it tells a client where to go on.
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    body: ErrorBody,
    offset: Option<u64>,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                message: message.into(),
                path: None,
            },
            offset: None,
        }
    }

    /// About the manifest file `path`.
    pub(super) fn about(mut self, path: &str) -> Self {
        self.body.path = Some(path.to_owned());
        self
    }

    /// Telling the client the server has `offset` bytes.
    pub(super) fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// A failure of the server itself: logged in full, answered 500
    /// without server paths.
    pub(super) fn internal(what: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "file service: {what}");
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("The file service failed to {what}; it has been logged."),
        )
    }

    pub(super) fn stale(chunk: super::ChunkId) -> Self {
        Refusal::new(
            StatusCode::CONFLICT,
            "stale",
            format!("This node does not hold {chunk} (any more): its output is not wanted."),
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(offset) = self.offset {
            response
                .headers_mut()
                .insert(UPLOAD_OFFSET, HeaderValue::from(offset));
        }
        response
    }
}

/// Lets a request through only with a node name and that node's token.
async fn authenticate<A: Authority>(
    State(service): State<Shared<A>>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let node = headers
        .get(NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|n| plain_node_name(n));
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let known = match (node, token) {
        (Some(node), Some(token)) => service
            .authority
            .verify_token(node, token)
            .await
            .then(|| node.to_owned()),
        _ => None,
    };
    let Some(node) = known else {
        let mut refused = Refusal::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!(
                "Send {NODE_HEADER}: <node name> and Authorization: Bearer <that node's token> \
                 (see `videoshare node-token`)."
            ),
        )
        .into_response();
        refused
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return refused;
    };
    request.extensions_mut().insert(Node(node));
    next.run(request).await
}

/// A node name as nodes are named: 1 to 128 visible ASCII characters.
fn plain_node_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic())
}

/// A GUID from a URL; 400 if it is not one.
pub(super) fn parse_guid(text: &str) -> Result<Guid, Refusal> {
    text.parse().map_err(|e: crate::carbon::guid::InvalidGuid| {
        Refusal::new(StatusCode::BAD_REQUEST, "bad_guid", e.to_string())
    })
}

/// `GET /farm/v1/jobs/{guid}/source` (or `/audio`): the file, with `Range`
/// (and `If-Range` against its ETag), `ETag: "sha256-<hex>"` and
/// `Repr-Digest`, to a node that holds a lease of that job.
async fn source<A: Authority>(
    State(service): State<Shared<A>>,
    axum::Extension(Node(node)): axum::Extension<Node>,
    Path((guid, which)): Path<(String, String)>,
    mut request: Request,
) -> Result<Response, Refusal> {
    let guid = parse_guid(&guid)?;
    let kind = match which.as_str() {
        "source" => SourceKind::Video,
        "audio" => SourceKind::Audio,
        _ => {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "A job has /source and /audio.",
            ));
        }
    };
    let Some((path, hex)) = service.authority.source(&node, guid, kind).await else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "no_lease",
            format!("Node {node:?} holds no running chunk of job {guid}."),
        ));
    };
    let hex = hex.to_ascii_lowercase();
    let digest = hex_bytes(&hex)
        .filter(|_| super::is_sha256_hex(&hex))
        .ok_or_else(|| {
            Refusal::internal(
                "know the source's digest",
                format!("{hex:?} is not a SHA-256"),
            )
        })?;
    let tag = etag(&hex);
    only_our_preconditions(request.headers_mut(), &tag);
    let Ok(response) = tower_http::services::ServeFile::new(&path)
        .oneshot(request)
        .await
        .map_err(|e: Infallible| e);
    if response.status() == StatusCode::NOT_FOUND {
        tracing::warn!(path = %path.display(), %guid, "a job's source is not on the shared storage");
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "source_missing",
            format!(
                "The {} of job {guid} is not on the shared storage.",
                kind.segment()
            ),
        ));
    }
    let mut response = response.map(Body::new);
    let headers = response.headers_mut();
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    for (name, value) in [
        (header::ETAG.as_str(), tag),
        ("repr-digest", format!("sha-256=:{b64}:")),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Leaves `ServeFile` only the preconditions our ETag answers: `If-Range`
/// is evaluated here (a range of another version is not served: the whole
/// file is), and ServeFile's own validators (size + mtime) are not asked.
fn only_our_preconditions(headers: &mut axum::http::HeaderMap, tag: &str) {
    if let Some(if_range) = headers.remove(header::IF_RANGE)
        && if_range.as_bytes() != tag.as_bytes()
    {
        headers.remove(header::RANGE);
    }
    for name in [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
    ] {
        headers.remove(name);
    }
}
