//! The periodic check of open sockets against their users' token cut-offs, straight from
//! PostgreSQL.
//!
//! It closes what a lost control event (Redis down at the time of a logout-all or a disable-user)
//! or a user deleted by hand left open.
//!
//! Normally the bus closes such sockets within a round trip; this bounds the worst case to one
//! period.

use std::sync::Arc;
use std::time::Duration;

use chat_domain::UserId;
use chat_selectors::tokens_not_before_of;
use chat_services::Store;

use super::Hub;

/// How often every tracked socket's user is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

/// Users per query.
const BATCH: usize = 5_000;

/// Runs forever: every `every`, reads the cut-off of each user with a socket here and closes the
/// sockets of older tokens (all of them for a user who is disabled or gone).
///
/// A database fault skips the round (logged).
pub async fn run_checks(store: Store, hub: Arc<Hub>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        for users in hub.session_users().chunks(BATCH) {
            match tokens_not_before_of(&store, users).await {
                Ok(found) => revoke_stale(&hub, users, &found),
                Err(error) => {
                    tracing::warn!(%error, "session check skipped: database unavailable");
                    break;
                }
            }
        }
    }
}

fn revoke_stale(hub: &Hub, users: &[UserId], found: &[(UserId, i64)]) {
    let cut_offs: std::collections::HashMap<UserId, i64> = found.iter().copied().collect();
    for user in users {
        let not_before = cut_offs.get(user).copied().unwrap_or(i64::MAX);
        let closed = hub.revoke(*user, not_before);
        if closed > 0 {
            tracing::info!(user.id = %user, sockets = closed, "stale sessions closed by the periodic check");
        }
    }
}
