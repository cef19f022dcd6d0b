//! Refresh tokens and sessions: issue, rotate (reuse kills the family), revoke, disable and enable users.

use super::*;

/// What bcrypt is given for `password`: the password itself when bcrypt can read all of it (at
/// most 71 bytes plus its terminator), else `sha256:` and the base64 SHA-256 of the whole
/// password (51 bytes) — the scheme of passlib's `bcrypt_sha256` — so no byte is ever dropped.
pub(super) fn bcrypt_input(password: &str) -> Vec<u8> {
    if password.len() <= 71 {
        password.as_bytes().to_vec()
    } else {
        let digest =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(password.as_bytes()));
        format!("sha256:{digest}").into_bytes()
    }
}

pub(super) fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    (token, hash)
}

pub(super) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub(super) fn invalid_refresh() -> Error {
    DomainError::Unauthorized(UnauthorizedReason::BadToken).into()
}

/// Stores a new refresh token for `user`, valid `ttl_secs` seconds, and returns it.
pub async fn issue_refresh_token(store: &Store, user: UserId, ttl_secs: u64) -> Result<String> {
    let (token, hash) = new_token();
    let mut conn = store.conn().await?;
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::user_id.eq(user.0),
            refresh_tokens::token_hash.eq(hash),
            refresh_tokens::expires_at.eq(Utc::now() + Duration::seconds(ttl_secs as i64)),
        ))
        .execute(&mut conn)
        .await?;
    Ok(token)
}

/// How far ahead of the database's clock a new token cut-off is set, s.
///
/// It must exceed the clock difference between any instance and the database, so that a token an
/// instance issued just before the revocation is older than the cut-off.
///
/// Tokens issued after it are dated at the cut-off (a few seconds ahead), so they are valid at
/// once.
pub const CUT_OFF_MARGIN_SECS: i64 = 3;

/// Exchanges a live refresh token for a new one (the old one is revoked in the same transaction).
///
/// Returns the user, the new token and the user's token cut-off. Errors: `Unauthorized(BadToken)`
/// for an unknown, expired or revoked token, or a disabled user. A token
/// replaced by rotation and presented again while unexpired (a stolen copy, used by the thief or by
/// its owner after the thief: RFC 9700 §4.14.2) also ends every session of its user
/// ([`revoke_sessions`]: access tokens and open sockets included) — once per token, so an old token
/// cannot be replayed to log its user out again and again; a token revoked by a logout proves
/// nothing and ends nothing. There is no grace period (it would let a thief who rotates first keep
/// the session): clients refresh one at a time.
pub async fn rotate_refresh_token(
    store: &Store,
    token: &str,
    ttl_secs: u64,
) -> Result<(UserId, String, i64)> {
    let hash = token_hash(token);
    let (new_token, new_hash) = new_token();
    let mut conn = store.conn().await?;
    let outcome: Result<std::result::Result<(i64, i64), Option<i64>>> = conn
        .transaction::<_, crate::Error, _>(async |conn| {
            let now = Utc::now();
            let live: Option<i64> = diesel::update(
                refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&hash))
                    .filter(refresh_tokens::revoked_at.is_null())
                    .filter(refresh_tokens::expires_at.gt(now)),
            )
            .set((
                refresh_tokens::revoked_at.eq(now),
                refresh_tokens::rotated_at.eq(now),
            ))
            .returning(refresh_tokens::user_id)
            .get_result(conn)
            .await
            .optional()?;
            let Some(user_id) = live else {
                let reused: Option<i64> = diesel::update(
                    refresh_tokens::table
                        .filter(refresh_tokens::token_hash.eq(&hash))
                        .filter(refresh_tokens::rotated_at.is_not_null())
                        .filter(refresh_tokens::expires_at.gt(now))
                        .filter(refresh_tokens::reuse_detected_at.is_null()),
                )
                .set(refresh_tokens::reuse_detected_at.eq(now))
                .returning(refresh_tokens::user_id)
                .get_result(conn)
                .await
                .optional()?;
                return Ok(Err(reused));
            };
            let (not_before, disabled): (i64, Option<chrono::DateTime<Utc>>) = users::table
                .find(user_id)
                .select((users::tokens_not_before, users::disabled_at))
                .first(conn)
                .await?;
            if disabled.is_some() {
                return Ok(Err(None));
            }
            diesel::insert_into(refresh_tokens::table)
                .values((
                    refresh_tokens::user_id.eq(user_id),
                    refresh_tokens::token_hash.eq(&new_hash),
                    refresh_tokens::expires_at.eq(now + Duration::seconds(ttl_secs as i64)),
                ))
                .execute(conn)
                .await?;
            Ok(Ok((user_id, not_before)))
        })
        .await;
    drop(conn);
    match outcome? {
        Ok((user_id, not_before)) => Ok((UserId(user_id), new_token, not_before)),
        Err(Some(reused_by)) => {
            tracing::warn!(
                user.id = reused_by,
                "a rotated refresh token was presented again; ending every session of its user"
            );
            revoke_sessions(store, UserId(reused_by)).await?;
            Err(invalid_refresh())
        }
        Err(None) => Err(invalid_refresh()),
    }
}

/// Ends every session of `user` (`POST /api/v1/auth/logout-all/`, refresh-token reuse).
///
/// Every token issued until now fails on every door from the moment this returns, refresh tokens
/// are revoked, and every instance closes the user's open sockets (within a bus round trip; the
/// periodic socket check covers a lost event).
///
/// Returns the new cut-off, unix s (tokens issued from now on are dated at it, so they are valid at
/// once). Errors: `NotFound` for no such user.
pub async fn revoke_sessions(store: &Store, user: UserId) -> Result<i64> {
    let ended = end_sessions(store, user, None).await?;
    announce_cut_off(store, user, (!ended.disabled).then_some(ended.not_before)).await;
    Ok(ended.not_before)
}

/// A user's token state after [`end_sessions`].
#[derive(QueryableByName)]
pub(super) struct Ended {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    not_before: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    disabled: bool,
}

/// Moves `user`'s cut-off to at least the database's clock plus [`CUT_OFF_MARGIN_SECS`] (one
/// clock for every instance) and revokes their refresh tokens, in one transaction; with
/// `disable` also sets (`Some(true)`) or clears (`Some(false)`) the disabled mark. Errors:
/// `NotFound`.
pub(super) async fn end_sessions(
    store: &Store,
    user: UserId,
    disable: Option<bool>,
) -> Result<Ended> {
    let mode = match disable {
        Some(true) => "disable",
        Some(false) => "enable",
        None => "keep",
    };
    let mut conn = store.conn().await?;
    conn.transaction::<_, crate::Error, _>(async |conn| {
        let ended: Option<Ended> = diesel::sql_query(
            "UPDATE users SET
                 tokens_not_before = GREATEST(tokens_not_before,
                     floor(extract(epoch FROM clock_timestamp()))::bigint + $2),
                 disabled_at = CASE $3 WHEN 'disable' THEN COALESCE(disabled_at, now())
                                       WHEN 'enable' THEN NULL ELSE disabled_at END
             WHERE id = $1
             RETURNING tokens_not_before AS not_before, disabled_at IS NOT NULL AS disabled",
        )
        .bind::<diesel::sql_types::BigInt, _>(user.0)
        .bind::<diesel::sql_types::BigInt, _>(CUT_OFF_MARGIN_SECS)
        .bind::<diesel::sql_types::Text, _>(mode)
        .get_result(conn)
        .await
        .optional()?;
        let Some(ended) = ended else {
            return Err(DomainError::NotFound(NotFoundReason::User).into());
        };
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::user_id.eq(user.0))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(Utc::now()))
        .execute(conn)
        .await?;
        Ok(ended)
    })
    .await
}

/// After a committed change of `user`'s cut-off (`None`: no token valid at all): replaces the
/// cached value (a plain `SET`, so a racing cache fill cannot keep the old one) and tells every
/// instance, in one round trip. A Redis fault is logged: the cache entry expires within 5 s and
/// the instances' periodic socket check closes what is left.
pub(super) async fn announce_cut_off(store: &Store, user: UserId, not_before: Option<i64>) {
    let event = ControlEvent::SessionsRevoked {
        user_id: user,
        not_before: not_before.unwrap_or(i64::MAX),
    };
    let Ok(payload) = serde_json::to_string(&event) else {
        return;
    };
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(store.keys.tokens_not_before(user))
        .arg(not_before.unwrap_or(-1))
        .arg("EX")
        .arg(chat_selectors::TOKENS_NOT_BEFORE_TTL_SECS)
        .ignore()
        .cmd(store.redis_health().publish_command())
        .arg(store.keys.control_channel())
        .arg(payload)
        .ignore();
    if let Err(error) = pipe.query_async::<()>(&mut store.redis()).await {
        metrics::counter!("chat_redis_errors_total").increment(1);
        tracing::error!(user.id = %user, %error, "session revocation not announced; sockets close at the next periodic check");
    }
}

/// Disables the user named `username` (`chat-server disable-user`): no login, every token dead
/// at once on every door, open sockets closed, refresh tokens revoked. Idempotent.
/// Errors: `NotFound`.
pub async fn disable_user(store: &Store, username: &str) -> Result<UserView> {
    let user = user_by_username(store, username).await?;
    end_sessions(store, user.id, Some(true)).await?;
    invalidate_user(store, user.id).await;
    announce_cut_off(store, user.id, None).await;
    Ok(user)
}

/// Lets a disabled user log in again (`chat-server enable-user`); the tokens they had stay dead.
/// Errors: `NotFound`.
pub async fn enable_user(store: &Store, username: &str) -> Result<UserView> {
    let user = user_by_username(store, username).await?;
    let ended = end_sessions(store, user.id, Some(false)).await?;
    invalidate_user(store, user.id).await;
    announce_cut_off(store, user.id, Some(ended.not_before)).await;
    Ok(user)
}

/// Revokes a live refresh token (logout). Errors: `Unauthorized` when it is not live.
pub async fn revoke_refresh_token(store: &Store, token: &str) -> Result<()> {
    let mut conn = store.conn().await?;
    let revoked = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash(token)))
            .filter(refresh_tokens::revoked_at.is_null())
            .filter(refresh_tokens::expires_at.gt(Utc::now())),
    )
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(&mut conn)
    .await?;
    if revoked == 0 {
        return Err(invalid_refresh());
    }
    Ok(())
}
