//! Access tokens (JWT, HS256), the check every authenticated request and socket makes
//! ([`authorize`]), and the `CurrentUser` extractor.
//!
//! Claims: `{"token_type":"access","user_id":<id>,"iat":<unix s>,"exp":<unix s>}` — the shape of
//! seed 002's djangorestframework-simplejwt tokens — or the doors' `{"user_id","exp"}` (door
//! 004's exact shape; doors 000 and 003 issue the same), valid `CHAT_DOOR_TOKEN_TTL_SECS`. Either
//! kind is accepted by every door. Refresh tokens are opaque (see
//! `chat_services::rotate_refresh_token`).
//!
//! A token is good when its signature and `exp` are, and it was issued at or after its user's
//! token cut-off (`chat_selectors::tokens_not_before`: logout-all, refresh-token reuse and
//! disable-user move it; a disabled or deleted user has none). The issue time is `iat`, or for
//! the doors' tokens, which have none, `exp` minus the door token lifetime. New tokens are issued
//! no earlier than the cut-off, so a login right after a logout-all works at once.

mod cut_offs;
pub use cut_offs::*;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chat_domain::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_type: Option<String>,
    user_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    exp: i64,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
    door_ttl_secs: i64,
}

/// A token whose signature and expiry are good: whose it is and when it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The token's user.
    pub user: UserId,
    /// When it was issued, unix s (`iat`, else `exp` minus the door token lifetime).
    pub issued_at: i64,
}

impl JwtKeys {
    /// Keys for an HS256 secret; access tokens live `ttl_secs` seconds, the doors' tokens
    /// `door_ttl_secs`.
    pub fn new(secret: &[u8], ttl_secs: u64, door_ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: ttl_secs as i64,
            door_ttl_secs: door_ttl_secs as i64,
        }
    }

    /// A new access token for `user`, issued now or at `not_before` (the user's token cut-off,
    /// unix s) if that is later.
    pub fn issue(&self, user: UserId, not_before: i64) -> String {
        let issued = chrono::Utc::now().timestamp().max(not_before);
        self.encode(&Claims {
            token_type: Some("access".into()),
            user_id: user.0,
            iat: Some(issued),
            exp: issued + self.ttl_secs,
        })
    }

    /// A door token for `user` (doors 000, 003, 004): claims exactly `{"user_id","exp"}`, valid
    /// `CHAT_DOOR_TOKEN_TTL_SECS` (the originals' 24 h by default) from now or from `not_before`
    /// if that is later.
    pub fn issue_door(&self, user: UserId, not_before: i64) -> String {
        let issued = chrono::Utc::now().timestamp().max(not_before);
        self.encode(&Claims {
            token_type: None,
            user_id: user.0,
            iat: None,
            exp: issued + self.door_ttl_secs,
        })
    }

    fn encode(&self, claims: &Claims) -> String {
        // Encoding HS256 with a valid key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    /// The user and issue time of a well-signed, unexpired access token (not yet checked against
    /// the user's cut-off: see [`authorize`]).
    /// Errors: 401 "Given token not valid for any token type" (simplejwt's wording), with the
    /// expiry hint of [`ApiError::token_expired`] when only `exp` is past.
    pub fn verify(&self, token: &str) -> Result<Verified, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                // Checked after the signature: only a token this server issued is "expired".
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => ApiError::token_expired(),
                _ => ApiError::unauthorized("Given token not valid for any token type"),
            })?;
        if data
            .claims
            .token_type
            .as_deref()
            .is_some_and(|t| t != "access")
        {
            return Err(ApiError::unauthorized(
                "Given token not valid for any token type",
            ));
        }
        let ttl = match data.claims.token_type {
            Some(_) => self.ttl_secs,
            None => self.door_ttl_secs,
        };
        let issued_at = match data.claims.iat {
            Some(iat) => iat,
            None => {
                // Dated by its expiry: one that expires later than a token issued now would (the
                // lifetime was lowered since) would look issued in the future and outlive every
                // revocation, so it is refused (the user logs in again).
                let latest = chrono::Utc::now().timestamp() + ttl + ISSUE_SLACK_SECS;
                if data.claims.exp > latest {
                    return Err(ApiError::unauthorized(
                        "Given token not valid for any token type",
                    ));
                }
                data.claims.exp - ttl
            }
        };
        Ok(Verified {
            user: UserId(data.claims.user_id),
            issued_at,
        })
    }
}

/// How much later than now plus its lifetime a token may expire: tokens are dated at most
/// `chat_services::CUT_OFF_MARGIN_SECS` ahead (at a fresh cut-off), plus clock differences.
const ISSUE_SLACK_SECS: i64 = chat_services::CUT_OFF_MARGIN_SECS + 10;

/// After a socket was tracked for revocation ([`crate::realtime::Hub::track`]).
///
/// Checks its token's cut-off once more, so that a revocation announced between the token's check
/// and the tracking (its event found no socket to close) still closes it, at once.
///
/// A fault reading the cut-off is left to the periodic check (`crate::realtime::sessions`).
pub async fn confirm_session(state: &AppState, verified: Verified) {
    match state.cut_offs.get(&state.store, verified.user).await {
        Ok(Some(not_before)) if verified.issued_at >= not_before => {}
        Ok(not_before) => {
            state
                .hub
                .revoke(verified.user, not_before.unwrap_or(i64::MAX));
        }
        Err(error) => tracing::warn!(%error, "session check after tracking failed"),
    }
}

/// Checks a token as every door does, for requests and sockets alike.
///
/// Signature and expiry ([`JwtKeys::verify`]), then the user's token cut-off ([`CutOffs`]: this
/// instance's copy, kept current by every revocation on any instance), so that a logout-all, a
/// refresh-token reuse or a disable-user takes effect on every door at once.
///
/// Errors: 401 "Given token not valid for any token type" for a bad token, 401 "Token revoked: log
/// in again." for a revoked one or one of a disabled or deleted user; 503 when the cut-off cannot
/// be read at all.
pub async fn authorize(state: &AppState, token: &str) -> Result<Verified, ApiError> {
    let verified = state.jwt.verify(token)?;
    let not_before = state.cut_offs.get(&state.store, verified.user).await?;
    match not_before {
        Some(not_before) if verified.issued_at >= not_before => Ok(verified),
        _ => Err(ApiError::unauthorized("Token revoked: log in again.")),
    }
}

/// Why a token names no user a socket or request may act as.
#[derive(Debug)]
pub enum TokenUserError {
    /// A bad, expired or revoked token, or a token of a deleted user: each door refuses in its
    /// own words (the error says which).
    Refused(ApiError),
    /// A store failed (503/500): never reported as a bad token, the client should retry.
    Fault(ApiError),
}

impl From<TokenUserError> for ApiError {
    fn from(error: TokenUserError) -> Self {
        match error {
            TokenUserError::Refused(e) | TokenUserError::Fault(e) => e,
        }
    }
}

/// The user of an access token, and the token's claims (every door's one way to authenticate).
///
/// Errors: [`TokenUserError::Refused`] with 401 (bad token) or 404 (user gone),
/// [`TokenUserError::Fault`] when PostgreSQL or Redis failed.
pub async fn token_user(
    state: &AppState,
    token: &str,
) -> Result<(chat_selectors::UserView, Verified), TokenUserError> {
    let split = |e: ApiError| {
        if e.status().is_server_error() {
            TokenUserError::Fault(e)
        } else {
            TokenUserError::Refused(e)
        }
    };
    let verified = authorize(state, token).await.map_err(split)?;
    let user = chat_selectors::user_by_id(&state.store, verified.user)
        .await
        .map_err(|e| split(e.into()))?;
    Ok((user, verified))
}

/// [`token_user`] for a socket that is about to open, in one PostgreSQL query.
///
/// The token's user, their token cut-off and their chats with each chat's `last_seq`
/// (`socket_start`), checked as [`authorize`] checks a request. The instance's copy of the
/// cut-off is refreshed with what was read.
///
/// Errors: 401 for a bad, expired or revoked token, or one of a disabled or deleted user ("Token
/// revoked: log in again."), 503/500 when PostgreSQL fails.
pub async fn socket_user(
    state: &AppState,
    token: &str,
) -> Result<(chat_selectors::SocketStart, Verified), ApiError> {
    let verified = state.jwt.verify(token)?;
    let started = std::time::Instant::now();
    let revoked = || ApiError::unauthorized("Token revoked: log in again.");
    let start = match chat_selectors::socket_start(&state.store, verified.user).await {
        Ok(start) => start,
        Err(chat_selectors::Error::Domain(chat_domain::DomainError::NotFound(_))) => {
            return Err(revoked());
        }
        Err(e) => return Err(e.into()),
    };
    state
        .cut_offs
        .fill(verified.user, start.tokens_not_before, started);
    match start.tokens_not_before {
        Some(not_before) if verified.issued_at >= not_before => Ok((start, verified)),
        _ => Err(revoked()),
    }
}

/// Counts a login or registration from the request's client address against
/// `CHAT_RATE_AUTH_PER_MIN`, across instances.
///
/// The address is the peer's, or with `CHAT_TRUST_PROXY` the one the proxy reports. Errors: 429
/// `rate_limited` with `Retry-After`.
pub async fn limit_auth(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let subject = format!("auth:{}", client_address(state, req));
    chat_services::rate::take(&state.store, &subject, state.settings.rate_auth_per_min)
        .await
        .map_err(ApiError::from)
}

/// The client's IP address as text, the key of per-address rate limits: the peer's, or with
/// `CHAT_TRUST_PROXY` the one `X-Forwarded-For`/`Forwarded` name; `unknown` when neither is known.
pub fn client_address(state: &AppState, req: &HttpRequest) -> String {
    let address = if state.settings.trust_proxy {
        req.connection_info()
            .realip_remote_addr()
            // Without a forwarding header this is the peer `ip:port`: key by the IP alone.
            .map(|a| {
                a.parse::<std::net::SocketAddr>()
                    .map_or_else(|_| a.to_owned(), |s| s.ip().to_string())
            })
    } else {
        req.peer_addr().map(|a| a.ip().to_string())
    };
    address.unwrap_or_else(|| "unknown".into())
}

/// The bearer token of a request: `Authorization: Bearer <token>`, else `?token=<token>`.
pub fn request_token(req: &HttpRequest) -> Option<String> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    header.or_else(|| {
        web::Query::<TokenQuery>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.into_inner().token)
    })
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The authenticated user of a request (`Authorization: Bearer <access>`), with the token used,
/// checked by [`authorize`].
///
/// Errors: 401 `{"detail":"Authentication credentials were not
/// provided.","code":"not_authenticated"}` without a token, 401 for a bad, expired or revoked one.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Who.
    pub id: UserId,
    /// The access token presented (door 002 puts it into WebSocket URLs).
    pub token: String,
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        Box::pin(async move {
            let Some(state) = state else {
                return Err(ApiError::unauthorized("Server misconfigured."));
            };
            let Some(token) = token else {
                return Err(ApiError::unauthorized(
                    "Authentication credentials were not provided.",
                ));
            };
            let verified = authorize(&state, &token).await?;
            Ok(CurrentUser {
                id: verified.user,
                token,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_racing_a_revocation_does_not_bring_the_old_cut_off_back() {
        let cut_offs = CutOffs::default();
        let user = UserId(7);
        let read_started = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        cut_offs.revoked(user, 100);
        cut_offs.fill(user, Some(0), read_started);
        assert_eq!(cut_offs.fresh(user), Some(Some(100)));
        // A read begun after the revocation is kept.
        cut_offs.fill(user, Some(200), Instant::now());
        assert_eq!(cut_offs.fresh(user), Some(Some(200)));
        cut_offs.revoked(user, i64::MAX);
        assert_eq!(
            cut_offs.fresh(user),
            Some(None),
            "disabled: no token is valid"
        );
        assert_eq!(cut_offs.fresh(UserId(8)), None);
    }

    #[test]
    fn door_tokens_are_dated_by_their_expiry_and_never_in_the_future() {
        let keys = JwtKeys::new(b"secret", 900, 86_400);
        let now = chrono::Utc::now().timestamp();
        let token = keys.issue_door(UserId(3), now + 2);
        let verified = keys.verify(&token).unwrap();
        assert_eq!(verified.user, UserId(3));
        assert_eq!(verified.issued_at, now + 2, "issued at the cut-off");
        // Issued under a longer door lifetime than now configured: refused.
        let longer = JwtKeys::new(b"secret", 900, 30 * 86_400).issue_door(UserId(3), now);
        assert!(keys.verify(&longer).is_err());
        let access = keys.issue(UserId(3), now + 3);
        assert_eq!(keys.verify(&access).unwrap().issued_at, now + 3);
    }
}
