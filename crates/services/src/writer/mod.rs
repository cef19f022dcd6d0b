//! Group commit for message sends: concurrent sends share one statement (one commit, one WAL
//! flush, one round trip) instead of paying for their own, and a send is still acknowledged only
//! after its commit (`synchronous_commit` stays on).
//!
//! `W` writer tasks each own a bounded queue (full queue: `send` waits — backpressure). A message
//! goes to queue `chat_id mod W`, so one chat is only ever written by one task, in arrival order,
//! and writers never wait on each other's chat rows. A task takes one request, then whatever else
//! is already queued (up to [`MAX_BATCH`], no sleeping: the queue fills while the previous batch is
//! in flight), stores the batch with [`INSERT_BATCH_SQL`] and answers every request.
//!
//! Each task takes one pooled connection per batch and gives it back after, so `W` writers hold at
//! most `W` of `CHAT_DB_POOL_SIZE` connections at a time; the rest serve reads and other writes.

use std::collections::HashSet;
use std::time::Instant;

use chat_selectors::{ChatEvent, Keys};
use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::Untyped;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tokio::sync::mpsc;

use crate::events::publish_all;
mod handle;
mod insert;

pub use handle::{MessageWrite, MessageWriter};
pub(crate) use handle::{Queued, queue_message, write_message};
pub use insert::Inserted;
pub(crate) use insert::InsertedRow;
pub(crate) use insert::insert_message;

use crate::{Error, Result, Store};

/// Writer tasks when the setting does not say (`CHAT_DB_WRITERS`).
pub const DEFAULT_WRITERS: usize = 4;

/// Requests one writer queue holds before senders wait.
pub const QUEUE_CAPACITY: usize = 4096;

/// Most messages stored by one batch statement.
pub const MAX_BATCH: usize = 512;

/// Stores a batch of messages in one statement; the batch form of the single-message statement in
/// `messages.rs`, with the same rules: a request is stored only when its author is a member
/// (when `require_member`) and has not used its `client_id` before, so a refused request uses no
/// seq; the survivors of each chat are numbered in arrival order (`ord`) and the chat's
/// `last_seq` moves once by their count (gapless; the row lock serializes concurrent writers of a
/// chat, taken in chat id order so two batches never deadlock on each other's chats); every
/// message of a chat gets the chat's new `last_message_at` (never moving backwards); each author's
/// read marker moves to the highest seq they just wrote (aggregated first: an `UPDATE .. FROM`
/// matching a row twice is undefined). Returns one row per stored message: its request's `ord`
/// (1-based), the message joined with its author's name, and the chat's support customer.
/// Parameters (bound between the pieces), one array element per request: `$1` chat ids, `$2` author ids (NULL: system line),
/// `$3` kinds, `$4` texts, `$5` client ids (nullable), `$6` `require_member`.
/// Two requests with the same `(author, client_id)` — in the batch or racing elsewhere — fail the
/// whole statement on the unique index, and nothing of it is stored.
const INSERT_BATCH_SQL: [&str; 7] = [
    "WITH req AS (SELECT * FROM unnest(",
    "::bigint[], ",
    "::bigint[], ",
    "::text[], ",
    "::text[], ",
    "::text[], ",
    "::bool[])
        WITH ORDINALITY AS r(chat_id, author_id, kind, text, client_id, require_member, ord)
), ok AS (
    SELECT req.*, row_number() OVER (PARTITION BY req.chat_id ORDER BY req.ord) AS n
    FROM req
    WHERE (NOT req.require_member OR EXISTS (
            SELECT 1 FROM chat_members cm
            WHERE cm.chat_id = req.chat_id AND cm.user_id = req.author_id))
      AND (req.client_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM messages m
            WHERE m.author_id = req.author_id AND m.client_id = req.client_id))
), locked AS MATERIALIZED (
    SELECT id FROM chats WHERE id IN (SELECT chat_id FROM ok) ORDER BY id FOR UPDATE
), c AS (
    UPDATE chats SET last_seq = chats.last_seq + k.cnt,
        last_message_at = GREATEST(chats.last_message_at, clock_timestamp())
    FROM (SELECT ok.chat_id, count(*) AS cnt
          FROM ok JOIN locked ON locked.id = ok.chat_id GROUP BY ok.chat_id) k
    WHERE chats.id = k.chat_id
    RETURNING chats.id, chats.last_seq - k.cnt AS base, chats.last_message_at,
              chats.support_user_id
), ins AS (
    INSERT INTO messages (chat_id, seq, author_id, kind, text, client_id, created_at)
    SELECT ok.chat_id, c.base + ok.n, ok.author_id, ok.kind, ok.text, ok.client_id,
           c.last_message_at
    FROM ok JOIN c ON c.id = ok.chat_id
    ORDER BY ok.ord
    RETURNING *
), read_own AS (
    UPDATE chat_members SET last_read_seq = r.seq
    FROM (SELECT chat_id, author_id, max(seq) AS seq FROM ins
          WHERE author_id IS NOT NULL GROUP BY chat_id, author_id) r
    WHERE chat_members.chat_id = r.chat_id AND chat_members.user_id = r.author_id
      AND chat_members.last_read_seq < r.seq
)
SELECT ok.ord, ins.id, ins.chat_id, ins.seq, ins.author_id, u.username AS author_username,
       ins.kind, ins.text, ins.client_id, ins.created_at, ins.edited_at, ins.deleted_at,
       c.support_user_id AS support_customer
FROM ins
JOIN c ON c.id = ins.chat_id
JOIN ok ON ok.chat_id = ins.chat_id AND c.base + ok.n = ins.seq
LEFT JOIN users u ON u.id = ins.author_id",
];

/// [`INSERT_BATCH_SQL`] with its six arrays bound, as a query of its own: diesel prepares it
/// once per connection and reuses the prepared statement (a static query id, safe to cache),
/// where a `sql_query` is parsed and planned again on every batch, in a round trip (and an
/// implicit transaction) of its own.
struct InsertBatch<'a> {
    chats: Vec<i64>,
    authors: Vec<Option<i64>>,
    kinds: Vec<&'a str>,
    texts: Vec<&'a str>,
    client_ids: Vec<Option<&'a str>>,
    require_member: Vec<bool>,
}

impl QueryId for InsertBatch<'_> {
    type QueryId = InsertBatch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for InsertBatch<'_> {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for InsertBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let [start, after_1, after_2, after_3, after_4, after_5, rest] = INSERT_BATCH_SQL;
        out.push_sql(start);
        out.push_bind_param::<Array<BigInt>, _>(&self.chats)?;
        out.push_sql(after_1);
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.authors)?;
        out.push_sql(after_2);
        out.push_bind_param::<Array<Text>, _>(&self.kinds)?;
        out.push_sql(after_3);
        out.push_bind_param::<Array<Text>, _>(&self.texts)?;
        out.push_sql(after_4);
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.client_ids)?;
        out.push_sql(after_5);
        out.push_bind_param::<Array<Bool>, _>(&self.require_member)?;
        out.push_sql(rest);
        Ok(())
    }
}

/// A row of [`INSERT_BATCH_SQL`]: the request's position and what the single statement returns.
#[derive(QueryableByName)]
struct BatchRow {
    #[diesel(sql_type = BigInt)]
    ord: i64,
    #[diesel(embed)]
    row: InsertedRow,
}

/// Starts `writers` writer tasks on the current tokio runtime and gives `store` their handle.
///
/// The handle is shared by every clone of `store`: from now on `send_message`, `support_send`,
/// `operator_send` and `post_system_line` go through the writer.
///
/// Call it on the runtime that should run the writers (the server's main multi-thread runtime, not
/// an HTTP worker's), before cloning the store out. The tasks hold only the pool, not the store:
/// they end when the last clone of `store` is dropped (their queues close). Errors: `Internal` when
/// `writers` is 0, when called outside a tokio runtime, or when this store already has a writer.
pub fn start_writer(store: &Store, writers: usize) -> Result<()> {
    if writers == 0 {
        return Err(Error::Internal(
            "a message writer needs at least 1 task".into(),
        ));
    }
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| Error::Internal(format!("message writer: no tokio runtime: {e}")))?;
    if store.writer.get().is_some() {
        return Err(Error::Internal(
            "this store already has a message writer".into(),
        ));
    }
    let (queues, inboxes): (Vec<_>, Vec<_>) = (0..writers)
        .map(|_| mpsc::channel::<MessageWrite>(QUEUE_CAPACITY))
        .unzip();
    let handle = MessageWriter::new(queues)
        .ok_or_else(|| Error::Internal("a message writer needs at least 1 task".into()))?;
    if store.writer.set(handle).is_err() {
        return Err(Error::Internal(
            "this store already has a message writer".into(),
        ));
    }
    for (index, inbox) in inboxes.into_iter().enumerate() {
        let publisher = Publisher {
            redis: store.redis(),
            keys: store.keys.clone(),
        };
        runtime.spawn(run(index, store.db.clone(), publisher, inbox));
    }
    tracing::info!(writers, "message writer started");
    Ok(())
}

/// One writer task: batches from `inbox` until it closes.
async fn run(
    index: usize,
    db: Pool<AsyncPgConnection>,
    publisher: Publisher,
    mut inbox: mpsc::Receiver<MessageWrite>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while inbox.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics::histogram!("chat_writer_batch_size").record(batch.len() as f64);
        let started = Instant::now();
        let size = batch.len();
        write_batch(&db, &publisher, std::mem::take(&mut batch)).await;
        tracing::debug!(
            writer = index,
            batch.size = size,
            duration_ms = started.elapsed().as_millis() as u64,
            "message batch written"
        );
    }
    tracing::debug!(writer = index, "message writer queue closed");
}

/// Stores `requests`, publishes what was stored, and answers each: the first use of every
/// `(author, client_id)` together in one statement, repeats of one in the batch one by one after
/// it (they are then refused as repeats, not failing the batch). A failed batch statement is
/// retried one by one when the database refused it (nothing was stored); after a connection
/// fault every request gets an error (whether it committed is unknown: retrying could store it
/// twice). The `message.created` events of the whole batch go out in one Redis round trip after
/// the commit and before any answer, so a stored message is published even when its sender has
/// stopped waiting; that publish holds the answers at most `PUBLISH_WAIT` (100 ms) and not at all
/// while Redis is down (`events::publish_all`).
async fn write_batch(
    db: &Pool<AsyncPgConnection>,
    publisher: &Publisher,
    requests: Vec<MessageWrite>,
) {
    let mut seen = HashSet::new();
    let (shared, repeats): (Vec<_>, Vec<_>) =
        requests
            .into_iter()
            .partition(|request| match (request.author, &request.client_id) {
                (Some(author), Some(client_id)) => seen.insert((author, client_id.clone())),
                _ => true,
            });
    let mut conn = match db.get().await {
        Ok(conn) => conn,
        Err(error) => {
            tracing::error!(%error, "message writer: no database connection");
            for request in shared.into_iter().chain(repeats) {
                let _ = request.reply.send(Err(Error::Pool(error.to_string())));
            }
            return;
        }
    };
    let mut outcomes = Vec::with_capacity(shared.len() + repeats.len());
    if !shared.is_empty() {
        match insert_batch(&mut conn, &shared).await {
            Ok(rows) => outcomes.extend(match_rows(shared, rows)),
            Err(error) if refused_by_database(&error) => {
                metrics::counter!("chat_writer_batches_retried_total").increment(1);
                tracing::warn!(%error, batch.size = shared.len(), "message batch refused; writing one by one");
                outcomes.extend(one_by_one(&mut conn, shared).await);
            }
            Err(error) => {
                tracing::error!(%error, batch.size = shared.len(), "message batch failed");
                // Whether it committed is unknown: the senders retry with their client_id.
                outcomes.extend(shared.into_iter().map(|request| {
                    let failed = Err(Error::Unavailable(format!(
                        "the message's outcome is unknown ({error}); retry with the same client_id"
                    )));
                    (request, failed)
                }));
            }
        }
    }
    outcomes.extend(one_by_one(&mut conn, repeats).await);
    drop(conn);
    let events: Vec<ChatEvent> = outcomes
        .iter()
        .filter_map(|(_, outcome)| outcome.as_ref().ok()?.as_ref())
        .map(Inserted::created_event)
        .collect();
    publish_all(&publisher.redis, &publisher.keys, &events).await;
    for (request, outcome) in outcomes {
        let _ = request.reply.send(outcome);
    }
}

/// Where a writer publishes: the shared Redis connection and the deployment's keys (not the
/// store itself, which holds the writer's queues: the tasks must not keep them open).
struct Publisher {
    redis: chat_selectors::RedisLink,
    keys: Keys,
}

/// The outcome of one request.
type Outcome = (MessageWrite, Result<Option<Inserted>>);

/// Runs [`INSERT_BATCH_SQL`] for `requests`; the rows of the stored ones, any order.
async fn insert_batch(
    conn: &mut AsyncPgConnection,
    requests: &[MessageWrite],
) -> Result<Vec<BatchRow>> {
    let batch = InsertBatch {
        chats: requests.iter().map(|r| r.chat.0).collect(),
        authors: requests.iter().map(|r| r.author.map(|a| a.0)).collect(),
        kinds: requests.iter().map(|r| r.kind.as_str()).collect(),
        texts: requests.iter().map(|r| r.text.as_str()).collect(),
        client_ids: requests.iter().map(|r| r.client_id.as_deref()).collect(),
        require_member: requests.iter().map(|r| r.require_member).collect(),
    };
    Ok(batch.load(conn).await?)
}

/// Pairs each of `requests` with its row of `rows` (matched by `ord`), or `None` when it was
/// not stored.
fn match_rows(requests: Vec<MessageWrite>, rows: Vec<BatchRow>) -> Vec<Outcome> {
    let mut by_ord: Vec<Option<InsertedRow>> = requests.iter().map(|_| None).collect();
    for BatchRow { ord, row } in rows {
        // `ord` is 1-based over `requests`.
        if let Some(slot) = usize::try_from(ord - 1)
            .ok()
            .and_then(|i| by_ord.get_mut(i))
        {
            *slot = Some(row);
        }
    }
    requests
        .into_iter()
        .zip(by_ord)
        .map(|(request, row)| (request, row.map(Inserted::try_from).transpose()))
        .collect()
}

/// Stores each of `requests` with its own single statement; each with its own outcome.
async fn one_by_one(conn: &mut AsyncPgConnection, requests: Vec<MessageWrite>) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        let outcome = insert_message(
            conn,
            request.chat,
            request.author,
            request.kind,
            &request.text,
            request.client_id.as_deref(),
            request.require_member,
        )
        .await;
        outcomes.push((request, outcome));
    }
    outcomes
}

/// Whether PostgreSQL refused the statement (unique violation, deadlock, serialization failure,
/// ...): it then changed nothing, and each request can be retried on its own. A lost connection is
/// not a refusal: the statement may have committed.
fn refused_by_database(error: &Error) -> bool {
    // diesel-async reports every PostgreSQL error without an SQL state (a broken or closed
    // connection) as `UnableToSendCommand`: the statement may have committed, no retry.
    matches!(
        error,
        Error::Database(DieselError::DatabaseError(kind, _))
            if !matches!(
                kind,
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
            )
    )
}
