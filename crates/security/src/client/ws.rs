//! Client WebSockets: opening one, reading its frames and how it ended.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::{Http, WAIT};

impl Http {
    /// Opens a WebSocket at `path`. Errors: the handshake was refused (with its HTTP status).
    pub async fn ws(&self, path: &str) -> Result<Ws> {
        let url = format!("{}{path}", self.ws_base());
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&url))
            .await
            .map_err(|_| anyhow!("WebSocket handshake to {path} timed out"))??;
        Ok(Ws { stream })
    }

    /// The HTTP status with which the server refuses a WebSocket handshake at `path` (`101` when
    /// it accepts it).
    pub async fn ws_status(&self, path: &str) -> Result<u16> {
        let url = format!("{}{path}", self.ws_base());
        match tokio_tungstenite::connect_async(&url).await {
            Ok(_) => Ok(101),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Ok(resp.status().as_u16()),
            Err(e) => Err(e.into()),
        }
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a WebSocket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code and reason.
    Closed(u16, String),
    /// The connection dropped without a close frame.
    Dropped,
    /// Still open at the deadline.
    Open,
}

/// A client WebSocket.
pub struct Ws {
    stream: Stream,
}

impl Ws {
    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.stream
            .send(Message::Text(text.to_owned().into()))
            .await?;
        Ok(())
    }

    /// Sends `value` as a JSON text frame.
    pub async fn send_json(&mut self, value: &Value) -> Result<()> {
        self.send_text(&value.to_string()).await
    }

    /// The next text frame as JSON, within `WAIT`. Errors: none came, or the socket ended.
    pub async fn recv_json(&mut self) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => bail!("no frame within {WAIT:?}"),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Ok(
                        serde_json::from_str(&text).unwrap_or(Value::String(text.to_string()))
                    );
                }
                Ok(Some(Ok(Message::Close(frame)))) => bail!("socket closed: {frame:?}"),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => bail!("socket error: {e}"),
                Ok(None) => bail!("socket ended"),
            }
        }
    }

    /// The next text frame for which `wanted` holds, skipping others, within `WAIT`.
    pub async fn recv_where(&mut self, wanted: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = tokio::time::timeout(left, self.recv_json())
                .await
                .map_err(|_| anyhow!("no matching frame within {WAIT:?}"))??;
            if wanted(&frame) {
                return Ok(frame);
            }
        }
    }

    /// Every text frame (as JSON) until `ms` milliseconds have passed or the socket ends, and how
    /// it ended.
    pub async fn collect(&mut self, ms: u64) -> (Vec<Value>, Ended) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return (frames, Ended::Open),
                Ok(Some(Ok(Message::Text(text)))) => frames
                    .push(serde_json::from_str(&text).unwrap_or(Value::String(text.to_string()))),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let ended = frame.map_or(Ended::Dropped, |f| {
                        Ended::Closed(u16::from(f.code), f.reason.to_string())
                    });
                    return (frames, ended);
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return (frames, Ended::Dropped),
            }
        }
    }

    /// How the socket ends within `ms` milliseconds (text frames are skipped).
    pub async fn ended(&mut self, ms: u64) -> Ended {
        self.collect(ms).await.1
    }
}

/// A gateway socket of `token`, after its `ready` frame.
pub async fn gateway(http: &Http, token: &str) -> Result<Ws> {
    let mut ws = http.ws(&format!("/api/v1/ws?token={token}")).await?;
    let ready = ws.recv_json().await?;
    if ready["event"] != "ready" {
        bail!("gateway greeted with {ready}");
    }
    Ok(ws)
}
