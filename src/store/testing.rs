//! Throwaway databases for tests, on either engine: a SQLite file in a temp
//! folder, or a fresh database on the test PostgreSQL server that
//! `scripts/ensure-postgres.sh` starts (`make test` runs it). Not for
//! production code; public so integration tests and benchmarks can use it.

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::{ConnectOptions, Connection, Executor};

use super::jobs::AudioSource;
use super::{Backend, DatabaseUrl, Db, NewJob, open_url};
use crate::carbon::Guid;

/// A job to queue in a store test: a random GUID, `user`'s, at
/// `priority`, with no destination.
pub fn new_job(user: &str, priority: u32) -> NewJob {
    NewJob {
        guid: Guid::new_random(),
        name: "clip.mp4".into(),
        user: user.into(),
        description: String::new(),
        priority,
        source_path: PathBuf::from("/srv/clip.mp4"),
        audio: AudioSource::Same,
        trim: None,
        source_copies: Vec::new(),
        notes: Vec::new(),
        destinations: Vec::new(),
        request_xml: String::new(),
    }
}

/// Where the script leaves the server's URL for a bare `cargo test`.
const URL_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/videoshare-test-db.url");

/// A database that lives as long as the value: its folder or its PostgreSQL
/// database is removed on drop.
pub struct TestDb {
    db: Db,
    url: DatabaseUrl,
    /// The SQLite file's folder.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL server's admin URL and this database's name.
    dropper: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database on `backend`.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite().await,
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// A fresh SQLite file.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temp folder");
        let url = DatabaseUrl::Sqlite(dir.path().join("videoshare.db"));
        let db = open_url(&url)
            .await
            .expect("the SQLite test database opens");
        TestDb {
            db,
            url,
            _dir: Some(dir),
            dropper: None,
        }
    }

    /// A fresh, migrated database on the test PostgreSQL server.
    pub async fn postgres() -> TestDb {
        let admin = server_url();
        let name = format!("vs_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::postgres::PgConnectOptions::from_str(&admin)
            .expect("the test PostgreSQL URL parses")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {admin}: {e}"));
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        let url = DatabaseUrl::Postgres(database_url(&admin, &name));
        let db = open_url(&url)
            .await
            .expect("the PostgreSQL test database opens");
        TestDb {
            db,
            url,
            _dir: None,
            dropper: Some((admin, name)),
        }
    }

    pub fn db(&self) -> Db {
        self.db.clone()
    }

    /// What `--database` takes to reach this database from a child process.
    pub fn url(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => url.clone(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.dropper.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // a thread of its own with a runtime of its own does the work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::postgres::PgConnectOptions::from_str(&admin)
                    .ok()?
                    .connect()
                    .await
                    .ok()?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await
                .ok()
            })
        })
        .join();
        // A database left behind is dropped by the script's next run.
        let _ = dropped;
    }
}

/// The test server's URL: `$VIDEOSHARE_TEST_DATABASE`, else what the script
/// last wrote.
pub fn server_url() -> String {
    if let Ok(url) = std::env::var("VIDEOSHARE_TEST_DATABASE")
        && !url.trim().is_empty()
    {
        return url.trim().to_owned();
    }
    match std::fs::read_to_string(PathBuf::from(URL_FILE)) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => panic!(
            "no PostgreSQL for the tests: run `make test` (it starts one with \
             scripts/ensure-postgres.sh) or set VIDEOSHARE_TEST_DATABASE"
        ),
    }
}

/// `admin` (a server URL naming some database) naming `name` instead.
fn database_url(admin: &str, name: &str) -> String {
    let (before_query, query) = match admin.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin, None),
    };
    let scheme_end = before_query.find("://").map_or(0, |i| i + 3);
    let base = match before_query[scheme_end..].find('/') {
        Some(slash) => &before_query[..scheme_end + slash],
        None => before_query,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs a store test's body once per engine: `store_test!(name, |db| async
/// move { … })` makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! store_test {
    ($name:ident, |$db:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: $crate::store::Db) {
                $body.await
            }

            #[tokio::test]
            async fn sqlite() {
                let test_db = $crate::store::testing::TestDb::sqlite().await;
                body(test_db.db()).await;
            }

            #[tokio::test]
            async fn postgres() {
                let test_db = $crate::store::testing::TestDb::postgres().await;
                body(test_db.db()).await;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn a_database_is_named_in_place_of_the_servers() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:54329/postgres", "vs_t_1"),
            "postgres://postgres@127.0.0.1:54329/vs_t_1"
        );
        assert_eq!(
            database_url("postgres://u:p@h/postgres?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
