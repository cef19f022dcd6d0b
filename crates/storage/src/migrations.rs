//! The embedded migrations and how they are applied, including the username-key backfill that
//! one migration needs computed in Rust.

use diesel_async::AsyncPgConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{Error, Result};

/// The migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The migration that makes `users.username_key` required and unique. Before it runs, the
/// server computes the key of every existing account (in Rust: it is RFC 8265 plus Unicode case
/// folding, which SQL cannot compute).
const USERNAME_KEYS_MIGRATION: &str = "20261202000001";

/// The PostgreSQL advisory lock key held while migrating ("chatmigr" in ASCII).
const MIGRATION_LOCK: i64 = 0x6368_6174_6d69_6772;

/// Applies every pending migration to the database at `database_url`, on a blocking thread.
///
/// Processes starting together take turns (a PostgreSQL advisory lock), so exactly one applies
/// each migration. Returns the versions applied (empty when up to date). Errors: `Internal`
/// with the cause; when two existing accounts have the same canonical username, `Internal`
/// naming both, and the migrations stop before the one that would make names unique (nothing
/// is merged or lost).
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>> {
    run_migrations_until(database_url, None).await
}

/// [`run_migrations`], stopping after the migration `last` (a version such as
/// `20261121000000`) when given: upgrade tests start from an older schema this way.
pub async fn run_migrations_until(database_url: &str, last: Option<&str>) -> Result<Vec<String>> {
    use diesel::Connection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let url = database_url.to_owned();
    let last = last.map(str::to_owned);
    tokio::task::spawn_blocking(move || -> Result<Vec<String>> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|e| Error::Internal(format!("connect for migrations: {e}")))?;
        // Instances starting together migrate one at a time (the others then find nothing
        // pending); the lock ends with this connection.
        diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")),
            &mut conn,
        )
        .map_err(|e| Error::Internal(format!("migration lock: {e}")))?;
        let mut applied = Vec::new();
        loop {
            let pending = conn
                .pending_migrations(MIGRATIONS)
                .map_err(|e| Error::Internal(format!("migrations: {e}")))?;
            let Some(next) = pending.into_iter().next() else {
                break;
            };
            let version = next.name().version().to_string();
            if last.as_deref().is_some_and(|last| version.as_str() > last) {
                break;
            }
            if version == USERNAME_KEYS_MIGRATION {
                backfill_username_keys(&mut conn)?;
            }
            conn.run_migration(&*next)
                .map_err(|e| Error::Internal(format!("migration {version}: {e}")))?;
            applied.push(version);
        }
        Ok(applied)
    })
    .await
    .map_err(|e| Error::Internal(format!("migration task: {e}")))?
}

#[derive(diesel::QueryableByName)]
struct LegacyUser {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    username: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    sandbox: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    username_key: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    username_skeleton: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    username_skeleton_upper: Option<String>,
}

/// Fills `username_key` and the skeletons of every account that has none, in one statement,
/// checked against every account (those keyed by an earlier, interrupted run too).
/// Errors (nothing written): two accounts of one namespace with the same key, named with ids.
/// Two names that merely look alike are both kept: the older account (lower id) keeps the
/// skeleton, the later one gets none (a warning names them), so the unique skeleton indexes can
/// be built; reserved lookalikes are named in a warning too.
fn backfill_username_keys<C>(conn: &mut C) -> Result<()>
where
    C: diesel::connection::LoadConnection<Backend = diesel::pg::Pg>,
{
    use diesel::RunQueryDsl;
    use diesel::sql_types::{Array, BigInt, Nullable, Text};
    use std::collections::{BTreeMap, HashMap};

    let users: Vec<LegacyUser> = diesel::sql_query(
        "SELECT id, username, sandbox, username_key, username_skeleton, username_skeleton_upper
         FROM users ORDER BY id",
    )
    .load(conn)
    .map_err(|e| Error::Internal(format!("reading usernames: {e}")))?;
    if users.iter().all(|u| u.username_key.is_some()) {
        return Ok(());
    }
    let key_of = |u: &LegacyUser| {
        u.username_key
            .clone()
            .unwrap_or_else(|| chat_domain::Username::key_of(&u.username))
    };
    let mut by_key: BTreeMap<(bool, String), Vec<&LegacyUser>> = BTreeMap::new();
    for user in &users {
        by_key
            .entry((user.sandbox, key_of(user)))
            .or_default()
            .push(user);
    }
    let collisions: Vec<String> = by_key
        .iter()
        .filter(|(_, same)| same.len() > 1)
        .map(|((_, key), same)| {
            let names: Vec<String> = same
                .iter()
                .map(|u| format!("id {} {:?}", u.id, u.username))
                .collect();
            format!("{} are all {key:?}", names.join(", "))
        })
        .collect();
    if !collisions.is_empty() {
        return Err(Error::Internal(format!(
            "cannot make usernames unique: accounts share a canonical name ({}). Rename all but \
             one of each (UPDATE users SET username = '<new name>' WHERE id = <id>) and start again; \
             no account was changed",
            collisions.join("; ")
        )));
    }
    // Skeletons are handed out oldest account first; those of keyed accounts are taken already.
    let mut taken: [HashMap<(bool, String), i64>; 2] = Default::default();
    for user in users.iter().filter(|u| u.username_key.is_some()) {
        let held = [&user.username_skeleton, &user.username_skeleton_upper];
        for (i, skeleton) in held.into_iter().enumerate() {
            if let Some(skeleton) = skeleton {
                taken[i].insert((user.sandbox, skeleton.clone()), user.id);
            }
        }
    }
    let (mut ids, mut keys, mut skeletons, mut uppers) = (vec![], vec![], vec![], vec![]);
    for user in users.iter().filter(|u| u.username_key.is_none()) {
        let key = key_of(user);
        let found = chat_domain::Username::skeletons_of(&key);
        if chat_domain::Username::is_reserved(&found) {
            tracing::warn!(user.id = user.id, username = %user.username, "an existing username looks like a reserved one");
        }
        let mut kept: [Option<String>; 2] = [None, None];
        for (i, skeleton) in found.into_iter().enumerate() {
            match taken[i].get(&(user.sandbox, skeleton.clone())) {
                Some(first) => tracing::warn!(
                    user.id = user.id, username = %user.username, looks_like = first,
                    "an existing username looks like an older one; both are kept"
                ),
                None => {
                    taken[i].insert((user.sandbox, skeleton.clone()), user.id);
                    kept[i] = Some(skeleton);
                }
            }
        }
        let [skeleton, upper] = kept;
        ids.push(user.id);
        keys.push(key);
        skeletons.push(skeleton);
        uppers.push(upper);
    }
    diesel::sql_query(
        "UPDATE users u SET username_key = v.k, username_skeleton = v.s, username_skeleton_upper = v.su
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS v(id, k, s, su)
         WHERE u.id = v.id",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Text>, _>(keys)
    .bind::<Array<Nullable<Text>>, _>(skeletons)
    .bind::<Array<Nullable<Text>>, _>(uppers)
    .execute(conn)
    .map_err(|e| Error::Internal(format!("writing username keys: {e}")))?;
    Ok(())
}
