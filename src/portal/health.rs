//! `GET /healthz`: whether this portal can do its work right now: the
//! Carbon server answers, the database takes a write, the disk holding
//! uploads has room, and (when the encoder can say) a node of its farm
//! takes jobs. 200 when all hold, 503 (with the same JSON naming what
//! failed) when not.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::Portal;
use super::farm::FarmView;
use crate::carbon::Client;

/// Below this much free space on the uploads disk the portal is unhealthy:
/// one more upload could fill it.
pub const MIN_FREE_BYTES: u64 = 256 << 20;

/// How long the encoder may take to answer a health check.
const ENCODER_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub encoder: Check,
    pub database: Check,
    pub disk: DiskCheck,
    /// The encoder farm: unhealthy when no node takes jobs. Absent when
    /// the encoder does not say (a Carbon server without `NodeList`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub farm: Option<FarmCheck>,
}

#[derive(Debug, Serialize)]
pub struct FarmCheck {
    pub ok: bool,
    #[serde(flatten)]
    pub view: FarmView,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct DiskCheck {
    pub ok: bool,
    pub free_bytes: u64,
}

/// A check's outcome: what answered, or what failed.
fn check<E: std::fmt::Display>(result: Result<String, E>) -> Check {
    match result {
        Ok(detail) => Check { ok: true, detail },
        Err(failure) => Check {
            ok: false,
            detail: failure.to_string(),
        },
    }
}

pub async fn healthz(State(portal): State<Portal>) -> (StatusCode, Json<Health>) {
    let config = portal.config();
    // A client of its own: a health check must not queue behind the poller.
    let probe = Client::with_habit(config.encoder_addr.clone(), config.encoder_habit)
        .with_timeout(ENCODER_TIMEOUT);
    let (encoder, database, farm) = tokio::join!(
        async {
            probe
                .version()
                .await
                .map(|v| format!("{} {}", v.product, v.version))
        },
        async {
            portal
                .inner
                .uploads
                .touch_health()
                .await
                .map(|()| "writable".to_owned())
        },
        portal.farm(),
    );
    let farm = farm.ok().map(|view| FarmCheck {
        ok: view.nodes_up > 0,
        view: (*view).clone(),
    });
    // statvfs blocks (a hung network file system): off the runtime.
    let uploaded = config.uploaded_dir.clone();
    let free_bytes = tokio::task::spawn_blocking(move || free_space(&uploaded))
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    let (encoder, database) = (check(encoder), check(database));
    let disk = DiskCheck {
        ok: free_bytes >= MIN_FREE_BYTES,
        free_bytes,
    };
    let healthy = encoder.ok && database.ok && disk.ok && farm.as_ref().is_none_or(|f| f.ok);
    let (status, word) = if healthy {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    };
    let health = Health {
        status: word,
        encoder,
        database,
        disk,
        farm,
    };
    (status, Json(health))
}

/// Bytes an unprivileged writer may still use on the file system of `path`.
fn free_space(path: &std::path::Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    Some(stat.blocks_available().saturating_mul(stat.fragment_size()))
}
