//! Access tokens (JWT, HS256) and the `CurrentUser` extractor.
//!
//! Claims: `{"token_type":"access","user_id":<id>,"iat":<unix s>,"exp":<unix s>}` — the shape of
//! seed 002's djangorestframework-simplejwt tokens — or door 004's `{"user_id","exp"}`. Either
//! kind is accepted by every door. Refresh tokens are opaque (see
//! `chat_services::rotate_refresh_token`).

use std::future::{Ready, ready};

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
}

impl JwtKeys {
    /// Keys for an HS256 secret; tokens live `ttl_secs` seconds.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: ttl_secs as i64,
        }
    }

    /// A new access token for `user`.
    pub fn issue(&self, user: UserId) -> String {
        let now = chrono::Utc::now().timestamp();
        self.encode(&Claims {
            token_type: Some("access".into()),
            user_id: user.0,
            iat: Some(now),
            exp: now + self.ttl_secs,
        })
    }

    /// A door-004 token for `user`: claims exactly `{"user_id","exp"}`, valid `ttl_secs` (the
    /// original's 24 h).
    pub fn issue_plain(&self, user: UserId, ttl_secs: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        self.encode(&Claims {
            token_type: None,
            user_id: user.0,
            iat: None,
            exp: now + ttl_secs,
        })
    }

    fn encode(&self, claims: &Claims) -> String {
        // Encoding HS256 with a valid key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .unwrap_or_default()
    }

    /// The user of a valid, unexpired access token.
    /// Errors: 401 "Given token not valid for any token type" (simplejwt's wording).
    pub fn verify(&self, token: &str) -> Result<UserId, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::unauthorized("Given token not valid for any token type"))?;
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
        Ok(UserId(data.claims.user_id))
    }
}

/// Counts a login or registration from the request's client address against
/// `CHAT_RATE_AUTH_PER_MIN`, across instances. The address is the peer's, or with
/// `CHAT_TRUST_PROXY` the one the proxy reports. Errors: 429 `rate_limited` with `Retry-After`.
pub async fn limit_auth(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
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
    let subject = format!("auth:{}", address.unwrap_or_else(|| "unknown".into()));
    chat_services::rate::take(&state.store, &subject, state.settings.rate_auth_per_min)
        .await
        .map_err(ApiError::from)
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

/// The authenticated user of a request (`Authorization: Bearer <access>`), with the token used.
/// Errors: 401 `{"detail":"Authentication credentials were not provided.","code":"not_authenticated"}`
/// without a token, 401 for a bad or expired one.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Who.
    pub id: UserId,
    /// The access token presented (door 002 puts it into WebSocket URLs).
    pub token: String,
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::unauthorized("Server misconfigured.")));
        };
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let result = match header.and_then(|v| v.strip_prefix("Bearer ")) {
            None => Err(ApiError::unauthorized(
                "Authentication credentials were not provided.",
            )),
            Some(token) => state.jwt.verify(token.trim()).map(|id| CurrentUser {
                id,
                token: token.trim().to_owned(),
            }),
        };
        ready(result)
    }
}
