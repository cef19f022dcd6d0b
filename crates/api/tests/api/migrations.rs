//! Upgrading a database of the previous release: the migration of the issue "Secure by default"
//! computes every account's canonical username, refuses to go on (naming the accounts, changing
//! nothing) while two share one, keeps lookalike names that already exist, and moves door 001's
//! users and chats into their sandbox.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

fn pg_base() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh, empty database (dropped at the end), migrated up to the release before.
struct OldDatabase {
    name: String,
    url: String,
}

impl OldDatabase {
    async fn new() -> Self {
        let db = Self::empty().await;
        let applied = chat_selectors::run_migrations_until(&db.url, Some("20261121000000"))
            .await
            .unwrap();
        assert_eq!(applied, vec!["20261121000000"]);
        db
    }

    /// A fresh database with nothing in it.
    async fn empty() -> Self {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let name = format!("t_{created}_{:016x}", rand::random::<u64>());
        let mut admin = AsyncPgConnection::establish(&format!("{}/postgres", pg_base()))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = format!("{}/{name}", pg_base());
        Self { name, url }
    }

    async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url).await.unwrap()
    }
}

impl Drop for OldDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) =
                    AsyncPgConnection::establish(&format!("{}/postgres", pg_base())).await
                {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Account {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    username_key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    username_skeleton: Option<String>,
    #[diesel(sql_type = Bool)]
    sandbox: bool,
}

async fn accounts(conn: &mut AsyncPgConnection) -> Vec<Account> {
    diesel::sql_query("SELECT id, username_key, username_skeleton, sandbox FROM users ORDER BY id")
        .load(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_accounts_are_canonicalised_and_a_collision_stops_the_migration() {
    let db = OldDatabase::new().await;
    let mut conn = db.conn().await;
    // The old unique index (lower()) let both of these in: PostgreSQL maps Σ to σ, and ς stays.
    conn.batch_execute(
        "INSERT INTO users (id, username, email, password_hash) VALUES
           (1, 'ΛΟΓΟΣ_x', 'a@example.com', 'h'),
           (2, 'λογος_x', 'b@example.com', 'h'),
           (3, 'bam_1', NULL, 'h'),
           (4, 'barn_1', NULL, 'h'),
           (5, 'user_1', NULL, NULL),
           (6, 'user_2', NULL, NULL),
           (7, 'paypal', NULL, 'h'),
           (8, 'paypa1', NULL, 'h');
         INSERT INTO chats (id, kind, name, title, is_private, owner_id) VALUES
           (10, 'group', 'chat_1', 'chat_1', true, 5),
           (11, 'group', 'mixed', 'mixed', true, 5);
         INSERT INTO chat_members (chat_id, user_id, role) VALUES
           (10, 5, 'owner'), (10, 6, 'member'), (11, 5, 'owner'), (11, 1, 'member');",
    )
    .await
    .unwrap();

    let error = chat_selectors::run_migrations(&db.url)
        .await
        .unwrap_err()
        .to_string();
    for part in [
        "id 1 \"ΛΟΓΟΣ_x\"",
        "id 2 \"λογος_x\"",
        "\"λογοσ_x\"",
        "no account was changed",
    ] {
        assert!(error.contains(part), "{part} not in: {error}");
    }
    // The expand step ran (its columns are there), the keys were not written, and the step that
    // makes them unique did not run.
    assert!(
        accounts(&mut conn)
            .await
            .iter()
            .all(|a| a.username_key.is_none()),
        "nothing written"
    );

    // The operator renames one; the migration then completes.
    conn.batch_execute("UPDATE users SET username = 'logos_y' WHERE id = 2")
        .await
        .unwrap();
    let applied = chat_selectors::run_migrations(&db.url).await.unwrap();
    assert_eq!(applied, vec!["20261202000001"]);
    let accounts = accounts(&mut conn).await;
    let key = |id: i64| accounts.iter().find(|a| a.id == id).unwrap();
    assert_eq!(key(1).username_key.as_deref(), Some("λογοσ_x"));
    assert_eq!(key(2).username_key.as_deref(), Some("logos_y"));
    // bam/barn look alike (TR39: "m" ~ "rn"): both kept, the later one without a skeleton.
    assert_eq!(key(3).username_skeleton.as_deref(), Some("barn_l"));
    assert_eq!(key(4).username_skeleton, None);
    // The older account keeps it, though the newer name sorts first.
    assert_eq!(key(7).username_skeleton.as_deref(), Some("paypal"));
    assert_eq!(key(8).username_skeleton, None);
    // Door 001's users (no password) and their own chat went into the sandbox; the chat with a
    // user of another door stayed outside it.
    assert_eq!(
        accounts
            .iter()
            .filter(|a| a.sandbox)
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        vec![5, 6]
    );
    #[derive(QueryableByName)]
    struct Chat {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Nullable<Text>)]
        name: Option<String>,
        #[diesel(sql_type = Bool)]
        sandbox: bool,
    }
    let chats: Vec<Chat> = diesel::sql_query("SELECT id, name, sandbox FROM chats ORDER BY id")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        chats
            .iter()
            .map(|c| (c.id, c.name.clone(), c.sandbox))
            .collect::<Vec<_>>(),
        vec![(10, None, true), (11, Some("mixed".into()), false)]
    );
    // From now on the key decides: the same name in another case cannot come in again.
    let duplicate = conn
        .batch_execute(
            "INSERT INTO users (username, username_key, email) VALUES ('Λογος_X', 'λογοσ_x', 'c@example.com')",
        )
        .await;
    assert!(duplicate.is_err(), "the canonical key is unique");
    // And a second run has nothing to do.
    assert!(
        chat_selectors::run_migrations(&db.url)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_a_new_database_once() {
    let db = OldDatabase::empty().await;
    let runs = (0..3).map(|_| chat_selectors::run_migrations(&db.url));
    let applied: Vec<String> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flat_map(|run| run.expect("a concurrent migration failed"))
        .collect();
    let mut once = applied.clone();
    once.sort();
    once.dedup();
    assert_eq!(
        once.len(),
        applied.len(),
        "a migration ran twice: {applied:?}"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let migrations = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    assert_eq!(applied.len(), migrations, "{applied:?}");
}
