//! The file service's client, used by a `--fetch` node: downloads a job's
//! source into a cache keyed by its SHA-256 (resumed with `Range` +
//! `If-Range` after a drop, verified before it is used) and uploads a
//! chunk's output folder (manifest, resumable files, verified `complete`).
//!
//! Several service addresses may be given; a request that cannot reach one
//! goes to the next, and the last one that answered is tried first. Every
//! service sees the same shared storage, so a transfer resumes on any.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_RANGE, RANGE};

use super::files::{manifest_of, read_piece, touch, write_body};
use super::{
    ChunkId, ErrorBody, ManifestEntry, NODE_HEADER, SourceKind, UPLOAD_OFFSET, bare,
    check_manifest, etag, is_sha256_hex, sha256_file,
};
use crate::carbon::Guid;
use crate::fsutil::off_runtime;

/// Attempts at a transfer whose SHA-256 does not match.
const TRIES: u32 = 3;

/// Breaks (dropped connections, unreachable services) one transfer
/// survives before it gives up.
const MAX_BREAKS: u32 = 8;

/// Bytes sent per PATCH.
const PIECE: u64 = 4 * 1024 * 1024;

/// Characters of a path component sent as they are.
const PATH_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a transfer with the file service can end in, besides success.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The bytes kept arriving different from their SHA-256.
    #[error(
        "sha256 mismatch: {what} did not match its sha256 after {attempts} attempts ({detail})"
    )]
    Mismatch {
        what: String,
        attempts: u32,
        detail: String,
    },
    /// The chunk is no longer this node's (409 `stale`): drop the output.
    #[error("stale chunk: {0}")]
    Stale(String),
    /// The service answered with a refusal.
    #[error("the file service refused {what}: HTTP {status} {code}: {message}")]
    Refused {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    /// No service could be reached.
    #[error("no file service answered {what} (tried {tried}): {last}")]
    Unreachable {
        what: String,
        tried: String,
        last: String,
    },
    /// The transfer broke off too often.
    #[error("{what} broke off {times} times; giving up: {last}")]
    Interrupted {
        what: String,
        times: u32,
        last: String,
    },
    /// A local file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The caller's input cannot be sent (bad digest, bad file name).
    #[error("{0}")]
    Invalid(String),
}

pub(super) fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> FetchError {
    let what = what.into();
    move |source| FetchError::Io { what, source }
}

/// A node's client of the farm's file services.
pub struct FarmFiles {
    /// Service base URLs (`http://host:port`), tried in order.
    bases: Vec<String>,
    node: String,
    token: String,
    http: reqwest::Client,
    /// The base that answered last: tried first.
    current: AtomicUsize,
    /// One download per source at a time (they share the `.part` file).
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Retries so far: [`DOWNLOADS`], [`UPLOADS`].
    retried: [AtomicU64; 2],
}

const DOWNLOADS: usize = 0;
const UPLOADS: usize = 1;

/// How often a client's transfers were retried (a break or a digest
/// mismatch each), for `videoshare_farm_transfer_retries_total{dir}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retries {
    pub downloads: u64,
    pub uploads: u64,
}

impl std::fmt::Debug for FarmFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FarmFiles")
            .field("bases", &self.bases)
            .field("node", &self.node)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl FarmFiles {
    /// A client of the services at `bases` (`http://host:port`, tried in
    /// order), speaking as `node` with its `token`. Plain HTTP only: across
    /// untrusted networks, reach the service through a TLS tunnel.
    pub fn new(
        bases: Vec<String>,
        node: impl Into<String>,
        token: impl Into<String>,
    ) -> Result<Self, FetchError> {
        let bases: Vec<String> = bases
            .into_iter()
            .map(|b| b.trim().trim_end_matches('/').to_owned())
            .collect();
        if bases.is_empty() || bases.iter().any(|b| !b.starts_with("http://")) {
            return Err(FetchError::Invalid(format!(
                "file services are given as http://host:port, not {bases:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| FetchError::Invalid(format!("cannot make an HTTP client: {e}")))?;
        Ok(FarmFiles {
            bases,
            node: node.into(),
            token: token.into(),
            http,
            current: AtomicUsize::new(0),
            fetching: Mutex::new(HashMap::new()),
            retried: Default::default(),
        })
    }

    /// Retries so far, by direction.
    pub fn retries(&self) -> Retries {
        Retries {
            downloads: self.retried[DOWNLOADS].load(Ordering::Relaxed),
            uploads: self.retried[UPLOADS].load(Ordering::Relaxed),
        }
    }

    /// Sends the request `build` makes for a base URL, to each base in
    /// turn until one answers (any status).
    async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, FetchError> {
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for k in 0..self.bases.len() {
            let i = (start + k) % self.bases.len();
            let sent = build(&self.http, &self.bases[i])
                .header(NODE_HEADER, &self.node)
                .bearer_auth(&self.token)
                .send()
                .await;
            match sent {
                Ok(response) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(response);
                }
                Err(e) => {
                    last = chain(&e);
                    tracing::warn!(base = %self.bases[i], error = %last, "{what}: the file service did not answer");
                }
            }
        }
        Err(FetchError::Unreachable {
            what: what.to_owned(),
            tried: self.bases.join(", "),
            last,
        })
    }

    /// Downloads the `which` file of job `guid` into `cache_dir` as
    /// `<sha256>` (unless it is there already: then nothing is asked),
    /// verified against `expected_sha256`, and returns its path.
    pub async fn fetch_source(
        &self,
        guid: Guid,
        which: SourceKind,
        expected_sha256: &str,
        cache_dir: &Path,
    ) -> Result<PathBuf, FetchError> {
        let expected = expected_sha256.to_ascii_lowercase();
        if !is_sha256_hex(&expected) {
            return Err(FetchError::Invalid(format!(
                "{expected_sha256:?} is not a SHA-256 in hex"
            )));
        }
        let lock = self
            .fetching
            .lock()
            .entry(expected.clone())
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().await;
        let done = cache_dir.join(&expected);
        if tokio::fs::metadata(&done).await.is_ok() {
            let used = done.clone();
            if let Err(e) = off_runtime(move || touch(&used)).await {
                tracing::warn!(path = %done.display(), error = %e, "cannot mark a cached source as used");
            }
            return Ok(done);
        }
        tokio::fs::create_dir_all(cache_dir)
            .await
            .map_err(io_error(format!("cannot make {}", cache_dir.display())))?;
        let part = cache_dir.join(format!("{expected}.part"));
        let what = format!("the {} of job {guid}", which.segment());
        let url = format!("/farm/v1/jobs/{}/{}", bare(guid), which.segment());
        let mut got = String::new();
        for attempt in 1..=TRIES {
            self.download(&what, &url, &expected, &part).await?;
            let hashing = part.clone();
            got = off_runtime(move || sha256_file(&hashing))
                .await
                .map_err(io_error(format!("cannot hash {}", part.display())))?;
            if got == expected {
                tokio::fs::rename(&part, &done)
                    .await
                    .map_err(io_error(format!("cannot keep {}", done.display())))?;
                return Ok(done);
            }
            let _ = tokio::fs::remove_file(&part).await;
            if attempt < TRIES {
                self.retried[DOWNLOADS].fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%what, attempt, %expected, %got, "sha256 mismatch; retrying from byte 0");
            }
        }
        Err(FetchError::Mismatch {
            what,
            attempts: TRIES,
            detail: format!("expected {expected}, last got {got}"),
        })
    }

    /// Brings `part` up to the whole file at `url`, resuming after breaks.
    async fn download(
        &self,
        what: &str,
        url: &str,
        expected: &str,
        part: &Path,
    ) -> Result<(), FetchError> {
        let tag = etag(expected);
        let mut breaks = Breaks::new(what, &self.retried[DOWNLOADS]);
        loop {
            let have = tokio::fs::metadata(part)
                .await
                .map(|m| m.len())
                .unwrap_or(0);
            let sent = self
                .send(what, |http, base| {
                    let request = http.get(format!("{base}{url}"));
                    if have > 0 {
                        request
                            .header(RANGE, format!("bytes={have}-"))
                            .header(IF_RANGE, &tag)
                    } else {
                        request
                    }
                })
                .await;
            let Some(response) = breaks.answered(sent).await? else {
                continue;
            };
            let from = match response.status() {
                StatusCode::OK => 0,
                StatusCode::PARTIAL_CONTENT => range_start(&response).unwrap_or(u64::MAX),
                // The part is as long as the file already (a crash before
                // the rename, or longer: not its bytes): the digest decides.
                StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => return Ok(()),
                _ => return Err(refusal(what, response).await),
            };
            if let Some(offered) = response.headers().get(ETAG)
                && offered.as_bytes() != tag.as_bytes()
            {
                return Err(FetchError::Refused {
                    what: what.to_owned(),
                    status: response.status().as_u16(),
                    code: "other_version".into(),
                    message: format!("the service offers {offered:?}, this job wants {tag}"),
                });
            }
            if from != 0 && from != have {
                return Err(FetchError::Invalid(format!(
                    "{what}: asked for bytes from {have}, the service sent from {from}"
                )));
            }
            match write_body(response, part, from).await? {
                None => return Ok(()),
                Some(why) => {
                    tracing::warn!(%what, %why, "download broke off; resuming with Range");
                    breaks.note(why).await?;
                }
            }
        }
    }

    /// Uploads the files under `root` (recursively) as the output of
    /// `chunk`: manifest, each file resumably, then `complete`. A file the
    /// service finds corrupt is sent again from byte 0 (up to 3 times);
    /// a chunk no longer held gives [`FetchError::Stale`].
    pub async fn upload_chunk(&self, chunk: ChunkId, root: &Path) -> Result<(), FetchError> {
        let owned = root.to_owned();
        let files = off_runtime(move || manifest_of(&owned)).await?;
        check_manifest(&files)
            .map_err(|why| FetchError::Invalid(format!("cannot send {}: {why}", root.display())))?;
        let what = chunk.to_string();
        let url = chunk.url_path();
        let response = self
            .send(&what, |http, base| {
                http.post(format!("{base}{url}")).json(&files)
            })
            .await?;
        if !response.status().is_success() {
            return Err(refusal(&what, response).await);
        }
        for entry in &files {
            self.send_file(&url, root, entry).await?;
        }
        self.complete(&what, &url, root, &files).await
    }

    /// Asks the service to check and place the upload; sends again from
    /// byte 0 each file it finds corrupt (up to [`TRIES`] times). A
    /// `complete` whose answer was lost is asked again: the service
    /// answers a placed chunk's again.
    async fn complete(
        &self,
        what: &str,
        url: &str,
        root: &Path,
        files: &[ManifestEntry],
    ) -> Result<(), FetchError> {
        let mut breaks = Breaks::new(what, &self.retried[UPLOADS]);
        let mut resent = 0;
        loop {
            let sent = self
                .send(what, |http, base| {
                    http.post(format!("{base}{url}/complete"))
                })
                .await;
            let Some(response) = breaks.answered(sent).await? else {
                continue;
            };
            if response.status().is_success() {
                return Ok(());
            }
            if response.status() != StatusCode::UNPROCESSABLE_ENTITY {
                return Err(refusal(what, response).await);
            }
            let bad = response.json::<ErrorBody>().await.ok().and_then(|b| b.path);
            let Some(entry) = files.iter().find(|e| Some(&e.path) == bad.as_ref()) else {
                return Err(FetchError::Invalid(format!(
                    "{what}: the service found a file bad but named none of ours ({bad:?})"
                )));
            };
            resent += 1;
            if resent > TRIES {
                return Err(FetchError::Mismatch {
                    what: format!("{what}: {}", entry.path),
                    attempts: resent,
                    detail: "the service kept finding the uploaded file corrupt".into(),
                });
            }
            self.retried[UPLOADS].fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%what, path = %entry.path, resent, "sha256 mismatch; retrying the file from byte 0");
            self.send_file(url, root, entry).await?;
        }
    }

    /// Sends one file from where the service has it to its end.
    async fn send_file(
        &self,
        chunk_url: &str,
        root: &Path,
        entry: &ManifestEntry,
    ) -> Result<(), FetchError> {
        let encoded: Vec<String> = entry
            .path
            .split('/')
            .map(|name| utf8_percent_encode(name, PATH_SAFE).to_string())
            .collect();
        let url = format!("{chunk_url}/files/{}", encoded.join("/"));
        let what = format!("upload of {}", entry.path);
        let local = root.join(&entry.path);
        let mut breaks = Breaks::new(&what, &self.retried[UPLOADS]);
        loop {
            let head = self
                .send(&what, |http, base| http.head(format!("{base}{url}")))
                .await;
            let Some(head) = breaks.answered(head).await? else {
                continue;
            };
            let offset = match head.status() {
                StatusCode::OK => upload_offset(&head),
                _ => return Err(refusal(&what, head).await),
            };
            let Some(offset) = offset.filter(|o| *o <= entry.size) else {
                return Err(FetchError::Invalid(format!(
                    "{what}: HEAD gave no usable Upload-Offset"
                )));
            };
            if offset == entry.size {
                return Ok(());
            }
            // Bytes: each failover retry shares the piece instead of copying it.
            let piece = bytes::Bytes::from(
                read_piece(&local, offset, PIECE.min(entry.size - offset)).await?,
            );
            let patch = self
                .send(&what, |http, base| {
                    http.patch(format!("{base}{url}"))
                        .header(UPLOAD_OFFSET, offset)
                        .header(CONTENT_TYPE, "application/offset+octet-stream")
                        .body(piece.clone())
                })
                .await;
            match patch {
                Ok(r) if r.status() == StatusCode::NO_CONTENT => {}
                // Interrupted, another offset, busy: ask HEAD again.
                Ok(r)
                    if matches!(
                        r.status(),
                        StatusCode::BAD_REQUEST
                            | StatusCode::CONFLICT
                            | StatusCode::LOCKED
                            | StatusCode::TOO_MANY_REQUESTS
                    ) =>
                {
                    let why = refusal(&what, r).await;
                    breaks.note(why.to_string()).await?;
                }
                Ok(r) => return Err(refusal(&what, r).await),
                Err(e @ FetchError::Unreachable { .. }) => breaks.note(e.to_string()).await?,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Counts a transfer's breaks and waits a little longer after each.
struct Breaks<'a> {
    what: String,
    times: u32,
    /// The client's count of retries in this direction.
    retried: &'a AtomicU64,
}

impl<'a> Breaks<'a> {
    fn new(what: &str, retried: &'a AtomicU64) -> Self {
        Breaks {
            what: what.to_owned(),
            times: 0,
            retried,
        }
    }

    /// The response of a request, or `None` once a service that could not
    /// be reached is noted as a break (the caller tries again).
    async fn answered(
        &mut self,
        sent: Result<reqwest::Response, FetchError>,
    ) -> Result<Option<reqwest::Response>, FetchError> {
        match sent {
            Ok(response) => Ok(Some(response)),
            Err(e @ FetchError::Unreachable { .. }) => {
                self.note(e.to_string()).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// One more break because of `why`: an error once there were too many,
    /// else a pause before the caller goes on.
    async fn note(&mut self, why: String) -> Result<(), FetchError> {
        self.times += 1;
        if self.times > MAX_BREAKS {
            return Err(FetchError::Interrupted {
                what: self.what.clone(),
                times: self.times,
                last: why,
            });
        }
        self.retried.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(what = %self.what, times = self.times, %why, "transfer broke off; going on");
        tokio::time::sleep(Duration::from_millis(200 * u64::from(self.times))).await;
        Ok(())
    }
}

/// An error's text with its causes (reqwest's own says little).
pub(super) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The error a refusing answer stands for.
async fn refusal(what: &str, response: reqwest::Response) -> FetchError {
    let status = response.status();
    let body = response.json::<ErrorBody>().await.ok();
    let (code, message) = body
        .map(|b| (b.error, b.message))
        .unwrap_or_else(|| ("http".into(), status.to_string()));
    if status == StatusCode::CONFLICT && code == "stale" {
        return FetchError::Stale(format!("{what}: {message}"));
    }
    FetchError::Refused {
        what: what.to_owned(),
        status: status.as_u16(),
        code,
        message,
    }
}

/// The first byte of a 206's `Content-Range: bytes FIRST-LAST/SIZE`.
fn range_start(response: &reqwest::Response) -> Option<u64> {
    let text = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    text.strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

fn upload_offset(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(UPLOAD_OFFSET)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
