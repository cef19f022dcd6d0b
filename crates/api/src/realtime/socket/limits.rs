//! What a socket may do: frame size and rate (a token bucket), queue length, timeouts.

use super::*;

/// Socket limits, from the settings, and the server's shutdown signal.
#[derive(Debug, Clone)]
pub struct SocketLimits {
    /// Largest frame (and aggregated message) accepted, bytes.
    pub max_frame_bytes: usize,
    /// Ping interval.
    pub heartbeat: Duration,
    /// Close a socket silent this long.
    pub client_timeout: Duration,
    /// Close a socket whose write is blocked this long.
    pub write_timeout: Duration,
    /// Events queued per socket.
    pub queue: usize,
    /// Client frames per second, on average.
    pub frames_per_sec: u32,
    /// Client frames at once; also how many refused frames in a row close the socket.
    pub frame_burst: u32,
    /// Turns `true` when the server shuts down.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// A socket's frame budget: a token bucket of `frame_burst` frames refilled at
/// `frames_per_sec`.
pub(super) struct FrameBudget {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
    /// Frames refused since the last one let through.
    pub(super) refused: u32,
}

impl FrameBudget {
    pub(super) fn new(limits: &SocketLimits) -> Self {
        Self {
            tokens: f64::from(limits.frame_burst),
            last: Instant::now(),
            rate: f64::from(limits.frames_per_sec),
            burst: f64::from(limits.frame_burst),
            refused: 0,
        }
    }

    /// Takes one frame's worth; `Err(wait)` when the bucket is empty (until one is back).
    /// A rate of 0 is no limit.
    pub(super) fn take(&mut self) -> Result<(), Duration> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let refilled = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refilled).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            Ok(())
        } else {
            self.refused += 1;
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

impl SocketLimits {
    /// The limits configured in the state's settings, with its shutdown signal.
    pub fn new(state: &crate::state::AppState) -> Self {
        Self::from_settings(&state.settings, state.shutdown.clone())
    }

    /// The limits configured in `settings`.
    pub fn from_settings(
        settings: &Settings,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            max_frame_bytes: settings.ws_max_frame_bytes,
            heartbeat: Duration::from_secs(settings.ws_heartbeat_secs),
            client_timeout: Duration::from_secs(settings.ws_client_timeout_secs),
            write_timeout: Duration::from_millis(settings.ws_write_timeout_ms),
            queue: settings.ws_outbound_queue,
            frames_per_sec: settings.ws_frames_per_sec,
            frame_burst: settings.ws_frame_burst,
            shutdown,
        }
    }
}
