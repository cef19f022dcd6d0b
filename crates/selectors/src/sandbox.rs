//! Door 001's reads (its sandbox of users and chats, seed 001): whole chat lists and whole
//! histories, read in keyset pages so that the door can stream them with a bounded memory cost.

use chat_domain::{DomainError, MessageKind, NotFoundReason};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::schema::{chat_members, chats, messages, users};
use crate::{ChatId, Result, Store, UserId};

/// A chat with its members' ids (door 001's chat shape):
/// `{"id","name","users":[ids ascending],"created_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, QueryableByName)]
pub struct ChatMembers {
    /// Id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Its name (door 001 keeps a chat's name as its title, unique among door 001's chats).
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Member ids, ascending.
    #[diesel(sql_type = Array<BigInt>)]
    pub users: Vec<i64>,
    /// Creation time.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// The ids of all of `user`'s door 001 chats, the chat with the newest message first (a chat
/// with no message by its creation time; ties by id, newest first). 8 bytes per chat.
pub async fn sandbox_chat_ids(store: &Store, user: UserId) -> Result<Vec<ChatId>> {
    let mut conn = store.conn().await?;
    let ids: Vec<i64> = chat_members::table
        .inner_join(chats::table)
        .filter(chat_members::user_id.eq(user.0))
        .filter(chats::sandbox.eq(true))
        .order((
            diesel::dsl::sql::<Timestamptz>("COALESCE(chats.last_message_at, chats.created_at)")
                .desc(),
            chats::id.desc(),
        ))
        .select(chats::id)
        .load(&mut conn)
        .await?;
    Ok(ids.into_iter().map(ChatId).collect())
}

/// The chats of `ids` with their members, in the order of `ids` (an id of no chat is left
/// out). One query.
pub async fn sandbox_chats(store: &Store, ids: &[ChatId]) -> Result<Vec<ChatMembers>> {
    let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let mut conn = store.conn().await?;
    let rows: Vec<ChatMembers> = diesel::sql_query(
        "SELECT c.id, c.title AS name, c.created_at,
                ARRAY(SELECT m.user_id FROM chat_members m WHERE m.chat_id = c.id
                      ORDER BY m.user_id) AS users
         FROM unnest($1::bigint[]) WITH ORDINALITY AS wanted(id, position)
         JOIN chats c ON c.id = wanted.id AND c.sandbox
         ORDER BY wanted.position",
    )
    .bind::<Array<BigInt>, _>(&raw)
    .load(&mut conn)
    .await?;
    Ok(rows)
}

/// A message of a door 001 chat, in door 001's shape:
/// `{"id","chat","author","text","created_at"}` (`author` null for a deleted account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxMessage {
    /// The message's `seq` in its chat (the page cursor; not on the wire).
    #[serde(skip)]
    pub seq: i64,
    /// Id.
    pub id: i64,
    /// Its chat's id.
    pub chat: i64,
    /// Its author's id.
    pub author: Option<i64>,
    /// Text.
    pub text: String,
    /// When it was stored: RFC 3339 in UTC, as chrono writes it (`2026-12-03T18:20:55.123456Z`).
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// Writes `at` exactly as chrono's `Serialize` does (RFC 3339, `Z`, 0/3/6/9 fraction digits),
/// without its per-character formatting machinery: a whole history's timestamps were a sixth of
/// `/messages/get`'s server time. Years outside 0..=9999 go through chrono itself.
fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    use chrono::{Datelike, Timelike};
    let nano = at.nanosecond();
    let year = at.year();
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        return at.serialize(serializer);
    }
    let mut out = [0u8; 30];
    let mut len = 0;
    let mut put = |value: u32, digits: u32| {
        for place in (0..digits).rev() {
            out[len] = b'0' + (value / 10u32.pow(place) % 10) as u8;
            len += 1;
        }
    };
    put(year as u32, 4);
    put(at.month(), 2);
    put(at.day(), 2);
    put(at.hour(), 2);
    put(at.minute(), 2);
    put(at.second(), 2);
    match nano {
        0 => {}
        n if n % 1_000_000 == 0 => put(n / 1_000_000, 3),
        n if n % 1_000 == 0 => put(n / 1_000, 6),
        n => put(n, 9),
    }
    // Digits so far: YYYY MM DD hh mm ss [fraction]; the separators go in between.
    let digits = &out[..len];
    let mut text = [0u8; 40];
    let mut at_text = 0;
    for (i, &digit) in digits.iter().enumerate() {
        let separator = match i {
            4 | 6 => Some(b'-'),
            8 => Some(b'T'),
            10 | 12 => Some(b':'),
            14 => Some(b'.'),
            _ => None,
        };
        if let Some(separator) = separator {
            text[at_text] = separator;
            at_text += 1;
        }
        text[at_text] = digit;
        at_text += 1;
    }
    text[at_text] = b'Z';
    at_text += 1;
    serializer.serialize_str(std::str::from_utf8(&text[..at_text]).unwrap_or_default())
}

/// One row of [`sandbox_messages`]' query: seq, id, author (None for a deleted user), text,
/// `created_at`.
type MessageRow = (i64, i64, Option<i64>, String, DateTime<Utc>);

/// Up to `limit` text messages of `chat` (not deleted ones) with `after < seq <= up_to`, oldest
/// first.
///
/// One page of a whole history read by `seq` cursor: `after` is the last page's last `seq` (0 to
/// begin), `up_to` the chat's `last_seq` when the read began, so that a read ends even while
/// messages keep coming. One indexed query, a prepared statement.
pub async fn sandbox_messages(
    store: &Store,
    chat: ChatId,
    after: i64,
    up_to: i64,
    limit: i64,
) -> Result<Vec<SandboxMessage>> {
    let mut conn = store.conn().await?;
    let rows: Vec<MessageRow> = messages::table
        .filter(messages::chat_id.eq(chat.0))
        .filter(messages::seq.gt(after))
        .filter(messages::seq.le(up_to))
        .filter(messages::kind.eq(MessageKind::Text.as_str()))
        .filter(messages::deleted_at.is_null())
        .order(messages::seq.asc())
        .limit(limit)
        .select((
            messages::seq,
            messages::id,
            messages::author_id,
            messages::text,
            messages::created_at,
        ))
        .load(&mut conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, id, author, text, created_at)| SandboxMessage {
            seq,
            id,
            chat: chat.0,
            author,
            text,
            created_at,
        })
        .collect())
}

/// Checks that every one of `ids` is a door 001 user. Errors: `NotFound(User)` when one is
/// not (unknown, or a user of the other doors). One query.
pub async fn require_sandbox_users(store: &Store, ids: &[UserId]) -> Result<()> {
    let mut raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
    raw.sort_unstable();
    raw.dedup();
    let mut conn = store.conn().await?;
    let found: i64 = users::table
        .filter(users::id.eq_any(&raw))
        .filter(users::sandbox.eq(true))
        .count()
        .get_result(&mut conn)
        .await?;
    if found == raw.len() as i64 {
        Ok(())
    } else {
        Err(DomainError::NotFound(NotFoundReason::User).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_are_written_exactly_as_chrono_writes_them() {
        #[derive(Serialize)]
        struct Ours(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);
        let mut nanos = vec![
            0,
            1,
            999,
            1_000,
            123_000,
            1_000_000,
            120_000_000,
            999_999_999,
        ];
        nanos.extend((0..200u32).map(|i| i.wrapping_mul(2_654_435_761) % 1_000_000_000));
        nanos.extend((0..200u32).map(|i| i.wrapping_mul(2_654_435_761) % 1_000_000 * 1_000));
        for (i, nano) in nanos.into_iter().enumerate() {
            let secs = [0i64, 1_764_786_055, 253_402_300_799, -1][i % 4] + i as i64 * 86_399;
            let Some(at) = Utc.timestamp_opt(secs, nano).single() else {
                continue;
            };
            assert_eq!(
                serde_json::to_string(&Ours(at)).ok(),
                serde_json::to_string(&at).ok(),
                "{at:?}"
            );
        }
        let far = Utc.with_ymd_and_hms(12_000, 1, 2, 3, 4, 5).single();
        let far = far.unwrap_or_default();
        assert_eq!(
            serde_json::to_string(&Ours(far)).ok(),
            serde_json::to_string(&far).ok()
        );
    }
}
