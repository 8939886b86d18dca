//! Which database a test app runs on: by default SQLite in its data folder,
//! as `make run` does; with `VIDEOSHARE_TEST_BACKEND=postgres` (what `make
//! test-postgres` sets) a fresh PostgreSQL database per data folder, kept
//! for restarts over the same folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use videoshare::store::testing::TestDb;
use videoshare::store::{Backend, DatabaseUrl, Db};

/// The PostgreSQL databases made so far, by data folder. Never dropped
/// while the tests run (an app restarted over the folder finds its
/// database again); `scripts/ensure-postgres.sh` drops them at its next run.
static DATABASES: LazyLock<Mutex<HashMap<PathBuf, TestDb>>> = LazyLock::new(Mutex::default);

/// The engine the test apps use.
pub fn backend() -> Backend {
    match std::env::var("VIDEOSHARE_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// What `--database` says for an app over `data`.
pub async fn database_for(data: &Path) -> String {
    if backend() == Backend::Sqlite {
        return "sqlite:".into();
    }
    // One key however the folder is spelt (the app reports it canonical).
    let data = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    if let Some(known) = DATABASES.lock().expect("registry").get(&data) {
        return known.url();
    }
    let fresh = TestDb::postgres().await;
    fresh.db().close().await;
    let url = fresh.url();
    DATABASES.lock().expect("registry").insert(data, fresh);
    url
}

/// The database of the app over `data`, opened beside it (or after it
/// stopped), for a test that looks under the stores.
pub async fn open_app_db(data: &Path) -> Db {
    let url = database_for(data).await;
    let url = DatabaseUrl::parse(&url, &data.join("videoshare.db")).expect("a database URL");
    videoshare::store::open_url(&url)
        .await
        .expect("the app's database opens")
}
