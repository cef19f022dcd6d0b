use chat_domain::DomainError;

/// The error of every read (and of the shared store plumbing that writes reuse).
/// `Domain` carries a rule's refusal (not found, forbidden); the rest are infrastructure faults
/// that a door answers with a 5xx (logged once, never shown to the client).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule refused the request.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// PostgreSQL answered with an error.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// No database connection could be had (pool timeout, connect failure).
    #[error("database pool: {0}")]
    Pool(String),
    /// Redis answered with an error or could not be reached.
    #[error("redis: {0}")]
    Cache(#[from] redis::RedisError),
    /// A store could not answer now, or a write's outcome is unknown (its connection broke
    /// mid-statement): retrying is safe — a send with the same `client_id` is never stored twice.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else that is our fault (a corrupt cache entry, a broken invariant).
    #[error("internal: {0}")]
    Internal(String),
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Error {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Pool(error.to_string())
    }
}

/// Result of a read.
pub type Result<T, E = Error> = std::result::Result<T, E>;
