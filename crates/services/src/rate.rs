//! Rate limits that hold across instances: a fixed one-minute window per subject, counted in Redis
//! (`INCR` and `EXPIRE` in one atomic pipeline).
//!
//! A Redis fault lets the request through (logged): limits protect the service, they must not take
//! it down.

use crate::Store;
use chat_domain::DomainError;

use crate::Result;

/// Counts one hit of `subject` against `per_min` hits per minute.
/// Errors: `RateLimited { retry_after_secs }` (until the window ends) when over the limit.
/// `per_min` 0 switches the limit off.
pub async fn take(store: &Store, subject: &str, per_min: u32) -> Result<()> {
    if per_min == 0 {
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let (window, into) = (now / 60, now % 60);
    let key = store.keys.rate(subject, window);
    let counted: redis::RedisResult<(u64,)> = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .expire(&key, 61)
        .ignore()
        .query_async(&mut store.redis())
        .await;
    match counted {
        Ok((hits,)) if hits > u64::from(per_min) => Err(DomainError::RateLimited {
            retry_after_secs: (60 - into).max(1),
        }
        .into()),
        Ok(_) => Ok(()),
        Err(error) => {
            metrics::counter!("chat_redis_errors_total").increment(1);
            tracing::warn!(%error, "rate limit not counted (Redis); request let through");
            Ok(())
        }
    }
}
