//! Token cut-offs: the per-user "no token issued before" times that revoke sessions, cached per process.

use super::*;

/// This instance's copy of users' token cut-offs, so that the check every request makes costs no
/// round trip.
///
/// An entry lives [`CutOffs::TTL`], and every revocation, on any instance, replaces it at once (the
/// control event over the bus; the revoking instance writes its own first).
///
/// A revocation therefore takes effect on the instance that made it before it answers, on the
/// others as soon as its event reaches them (a bus round trip), and within [`CutOffs::TTL`] when
/// the bus is down. A value read from Redis or PostgreSQL never replaces one written after the read
/// began, so a read racing a revocation cannot bring the old cut-off back.
#[derive(Debug, Default)]
pub struct CutOffs {
    entries: Mutex<HashMap<UserId, CutOff>>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct CutOff {
    /// Unix s; `None`: no token of the user is valid (disabled or gone).
    not_before: Option<i64>,
    written: Instant,
}

impl CutOffs {
    /// How long an entry is used without asking Redis again.
    pub const TTL: Duration = Duration::from_secs(1);
    /// Past this many entries, expired ones are dropped.
    const PURGE_ABOVE: usize = 50_000;

    /// `user`'s cut-off (`None`: no valid token), from this instance's copy while it is fresh,
    /// else read through Redis/PostgreSQL (`chat_selectors::tokens_not_before`).
    pub async fn get(
        &self,
        store: &chat_selectors::Store,
        user: UserId,
    ) -> Result<Option<i64>, ApiError> {
        let started = Instant::now();
        if let Some(not_before) = self.fresh(user) {
            return Ok(not_before);
        }
        let not_before = chat_selectors::tokens_not_before(store, user).await?;
        self.fill(user, not_before, started);
        Ok(not_before)
    }

    /// Keeps a value read from the stores, unless one was written since the read `started`.
    pub(super) fn fill(&self, user: UserId, not_before: Option<i64>, started: Instant) {
        let mut entries = self.lock();
        if entries.len() > Self::PURGE_ABOVE {
            entries.retain(|_, e| e.written.elapsed() < Self::TTL);
        }
        if entries.get(&user).is_some_and(|e| e.written > started) {
            return;
        }
        entries.insert(
            user,
            CutOff {
                not_before,
                written: Instant::now(),
            },
        );
    }

    /// The fresh local copy of `user`'s cut-off, if any.
    pub(super) fn fresh(&self, user: UserId) -> Option<Option<i64>> {
        self.lock()
            .get(&user)
            .filter(|e| e.written.elapsed() < Self::TTL)
            .map(|e| e.not_before)
    }

    /// A revocation learned: `user`'s tokens issued before `not_before` are dead (`i64::MAX`:
    /// all of them).
    pub fn revoked(&self, user: UserId, not_before: i64) {
        let not_before = (not_before != i64::MAX).then_some(not_before);
        self.lock().insert(
            user,
            CutOff {
                not_before,
                written: Instant::now(),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, CutOff>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
