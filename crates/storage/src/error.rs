//! The one error of the storage layers (reads and writes), and the helpers that classify
//! database faults.

use chat_domain::DomainError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// The error of every read and write.
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

/// Result of a read or write.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The name of the unique constraint or index a statement violated, if that is what failed.
pub fn unique_violation(error: &Error) -> Option<&str> {
    match error {
        Error::Database(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
            Some(info.constraint_name().unwrap_or(""))
        }
        _ => None,
    }
}

/// Whether a database error is a fault of the connection or of the server's state (the connection
/// broke, the server is shutting down or starting), not a refusal of the statement.
///
/// The outcome of a write is then unknown, and the request may be retried.
pub fn transient_database_fault(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            message.starts_with("terminating connection")
                || message.starts_with("the database system is")
        }
        _ => false,
    }
}

/// Whether a statement failed on a foreign key: a user or chat it refers to is gone (deleted
/// between a cached read and the write). Callers answer `NotFound`, not a fault.
pub fn foreign_key_violation(error: &Error) -> bool {
    matches!(
        error,
        Error::Database(DieselError::DatabaseError(
            DatabaseErrorKind::ForeignKeyViolation,
            _
        ))
    )
}
