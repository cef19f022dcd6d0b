//! Sends in flight on one socket ([`Pipeline`]): a socket hands a send to the writer and reads
//! its next frame at once; the outcomes come back in send order.

use std::future::Future;

use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesOrdered;

/// Most sends one socket has in flight: its next frame is read
/// only when one of them is answered (backpressure on the client, whose frames wait in TCP).
pub const PIPELINE_DEPTH: usize = 64;

/// A socket's sends in flight, answered first in, first out (`T`: what the door needs to answer
/// one). Bounded: the socket loop stops reading the client while it is full.
pub struct Pipeline<T> {
    /// Made on the first send: an idle socket's pipeline allocates nothing (a `FuturesOrdered`
    /// allocates its task queue when made).
    inflight: Option<FuturesOrdered<LocalBoxFuture<'static, T>>>,
    depth: usize,
}

impl<T> Pipeline<T> {
    /// An empty pipeline of at most `depth` sends (at least 1).
    pub fn new(depth: usize) -> Self {
        Self {
            inflight: None,
            depth: depth.max(1),
        }
    }

    /// Adds a send's outcome future; it is polled by the socket loop from now on.
    pub fn push(&mut self, outcome: impl Future<Output = T> + 'static) {
        self.inflight
            .get_or_insert_with(FuturesOrdered::new)
            .push_back(Box::pin(outcome));
    }

    /// Whether the socket must stop reading frames until a send is answered.
    pub fn is_full(&self) -> bool {
        self.len() >= self.depth
    }

    /// Sends in flight.
    pub fn len(&self) -> usize {
        self.inflight.as_ref().map_or(0, FuturesOrdered::len)
    }

    /// Whether no send is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The oldest send's outcome once it (and every earlier one) is done; never resolves while
    /// the pipeline is empty.
    pub async fn next(&mut self) -> T {
        match self.inflight.as_mut() {
            Some(inflight) if !inflight.is_empty() => match inflight.next().await {
                Some(done) => done,
                None => std::future::pending().await,
            },
            _ => std::future::pending().await,
        }
    }
}
