use std::collections::BTreeMap;

/// Field name → the problems found with it, in the order found.
/// Serialized as `{"<field>": ["<problem>", ...]}` in the native door's validation errors.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Why a use case was refused. Each door maps a variant to its own wire format
/// (the native door: `Invalid` → 400, `Unauthorized` → 401, `Forbidden` → 403,
/// `NotFound` → 404, `Conflict` → 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// One or more input fields are malformed; nothing was changed.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// Credentials or tokens are missing, wrong or expired.
    #[error("{0}")]
    Unauthorized(String),
    /// The actor is known but may not do this (e.g. posting in a chat they are not a member of).
    #[error("{0}")]
    Forbidden(String),
    /// The named thing does not exist (the text says what, e.g. "user not found").
    #[error("{0}")]
    NotFound(String),
    /// The change would break a uniqueness rule (duplicate username, already a member, ...).
    #[error("{0}")]
    Conflict(String),
    /// Over a rate limit; nothing was done. Retry after `retry_after_secs` seconds.
    #[error("Too many requests; retry in {retry_after_secs} s.")]
    RateLimited {
        /// Seconds until the limit's window ends.
        retry_after_secs: u64,
    },
}

impl DomainError {
    /// A single-field validation error.
    pub fn invalid(field: &str, problem: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), vec![problem.into()]);
        Self::Invalid(fields)
    }

    /// Merges several parse results' errors into one `Invalid`, so a client learns about every bad
    /// field at once. Non-`Invalid` errors are returned as they are.
    pub fn merge(errors: impl IntoIterator<Item = DomainError>) -> Option<DomainError> {
        let mut fields = FieldErrors::new();
        for error in errors {
            match error {
                DomainError::Invalid(more) => {
                    for (field, problems) in more {
                        fields.entry(field).or_default().extend(problems);
                    }
                }
                other => return Some(other),
            }
        }
        (!fields.is_empty()).then_some(DomainError::Invalid(fields))
    }
}
