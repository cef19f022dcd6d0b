//! The database and Redis part: a migrated template database built once per machine, a clone of
//! it per test, and a Redis key prefix per test.

use std::sync::Arc;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::Rng;

/// The PostgreSQL server the tests use: `TEST_DATABASE_URL` (a URL without a database name),
/// default `postgres://postgres@127.0.0.1:5432`.
pub fn pg_base() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The Redis server the tests share: `REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn admin() -> AsyncPgConnection {
    AsyncPgConnection::establish(&format!("{}/postgres", pg_base()))
        .await
        .expect("PostgreSQL is not reachable at TEST_DATABASE_URL (run `make services`)")
}

/// The template's name changes with the migrations, so a schema change builds a new one.
fn template_name() -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let mut paths: Vec<_> = walk(std::path::Path::new(dir));
    paths.sort();
    let mut hasher = DefaultHasher::new();
    for path in paths {
        path.file_name().hash(&mut hasher);
        std::fs::read(&path).unwrap().hash(&mut hasher);
    }
    format!("chat_tpl_{:016x}", hasher.finish())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// Builds the migrated template once per machine (other test processes wait on an advisory
/// lock), building under a temporary name so a crash never leaves a half-migrated template.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut conn = admin().await;
            diesel::sql_query("SELECT pg_advisory_lock(727274)")
                .execute(&mut conn)
                .await
                .unwrap();
            let exists: Count =
                diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
                    .bind::<Text, _>(&name)
                    .get_result(&mut conn)
                    .await
                    .unwrap();
            if exists.n == 0 {
                let build = format!("{name}_build");
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {build}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                diesel::sql_query(format!("CREATE DATABASE {build}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                chat_selectors::run_migrations(&format!("{}/{build}", pg_base()))
                    .await
                    .unwrap();
                diesel::sql_query(format!("ALTER DATABASE {build} RENAME TO {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            diesel::sql_query("SELECT pg_advisory_unlock(727274)")
                .execute(&mut conn)
                .await
                .unwrap();
            name
        })
        .await
}

/// A test's own database and Redis prefix; both are removed when the last holder drops it.
pub struct TestEnv {
    /// The database's name (`t_<unix secs>_<hex>`).
    pub db_name: String,
    /// `postgres://…/<db_name>`.
    pub database_url: String,
    /// The prefix of every Redis key and channel of this test (`test:<hex>:`).
    pub redis_prefix: String,
}

impl TestEnv {
    /// A new database cloned from the migrated template, and a new Redis prefix.
    pub async fn new() -> Arc<Self> {
        let template = template().await;
        let suffix: u64 = rand::rng().random();
        // The creation time in the name lets `make clean-test-dbs` drop only stale databases,
        // never those of a run still going.
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let db_name = format!("t_{created}_{suffix:016x}");
        let mut conn = admin().await;
        diesel::sql_query(format!("CREATE DATABASE {db_name} TEMPLATE {template}"))
            .execute(&mut conn)
            .await
            .unwrap();
        Arc::new(Self {
            database_url: format!("{}/{db_name}", pg_base()),
            redis_prefix: format!("test:{suffix:016x}:"),
            db_name,
        })
    }

    /// What a [`chat_selectors::Store`] needs to reach this test's database and Redis prefix: a
    /// pool of 4, waits of at most 5 s for a connection, no send limit.
    pub fn store_config(&self) -> chat_selectors::StoreConfig {
        chat_selectors::StoreConfig {
            database_url: self.database_url.clone(),
            redis_url: redis_url(),
            redis_cluster_urls: Vec::new(),
            event_shards: chat_selectors::DEFAULT_EVENT_SHARDS,
            redis_prefix: self.redis_prefix.clone(),
            db_pool_size: 4,
            db_wait_timeout_ms: 5_000,
            send_per_min: 0,
        }
    }

    /// A store on this test's database and Redis prefix (no message writer started).
    pub async fn store(&self) -> chat_selectors::Store {
        chat_selectors::Store::connect(&self.store_config())
            .await
            .expect("Redis is not reachable at REDIS_URL (run `make services`)")
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let db = self.db_name.clone();
        let prefix = self.redis_prefix.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = admin().await;
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
                if let Ok(client) = redis::Client::open(redis_url())
                    && let Ok(mut redis) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}*"))
                        .query_async(&mut redis)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> =
                            redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Runs `sql` on the server's `postgres` database (for statements about a test's own database,
/// such as refusing its connections for a while).
pub async fn admin_execute(sql: &str) {
    use diesel_async::SimpleAsyncConnection;
    admin()
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
