use chat_domain::DomainError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// The error of every write. `Domain` is a refusal the client caused (mapped to 4xx by each
/// door); the other variants are faults of ours or of the infrastructure (5xx, logged once).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule refused the request; nothing was changed.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// PostgreSQL answered with an error the use case did not expect.
    #[error("database: {0}")]
    Database(#[from] DieselError),
    /// No database connection could be had in time.
    #[error("database pool: {0}")]
    Pool(String),
    /// A store could not answer now, or a write's outcome is unknown (its connection broke
    /// mid-statement): retrying is safe — a send with the same `client_id` is never stored twice.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else (a failed blocking task, a broken invariant, a Redis fault on a read).
    #[error("internal: {0}")]
    Internal(String),
}

impl From<chat_selectors::Error> for Error {
    fn from(error: chat_selectors::Error) -> Self {
        use chat_selectors::Error as S;
        match error {
            S::Domain(e) => Self::Domain(e),
            S::Database(e) => Self::Database(e),
            S::Pool(e) => Self::Pool(e),
            S::Cache(e) => Self::Unavailable(format!("redis: {e}")),
            S::Unavailable(e) => Self::Unavailable(e),
            S::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Error {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Pool(error.to_string())
    }
}

/// Result of a write.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The name of the unique constraint or index a statement violated, if that is what failed.
pub(crate) fn unique_violation(error: &Error) -> Option<&str> {
    match error {
        Error::Database(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
            Some(info.constraint_name().unwrap_or(""))
        }
        _ => None,
    }
}

/// Whether a database error is a fault of the connection or of the server's state (the
/// connection broke, the server is shutting down or starting), not a refusal of the statement:
/// the outcome of a write is then unknown, and the request may be retried.
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
pub(crate) fn foreign_key_violation(error: &Error) -> bool {
    matches!(
        error,
        Error::Database(DieselError::DatabaseError(
            DatabaseErrorKind::ForeignKeyViolation,
            _
        ))
    )
}
