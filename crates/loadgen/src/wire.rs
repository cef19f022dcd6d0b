//! The two WebSocket protocols the generator speaks: the native gateway (`/api/v1/ws`) and door
//! 002's group socket (`/ws/group/<name>/`), as docs/doors.md defines them.
//!
//! Every message the generator sends carries its own probe in the text, `L<sender>:<n>:<t>`:
//! the sender's global index, its per-sender counter (1, 2, 3, …) and the send time in µs since
//! the Unix epoch, so any receiver can measure send→deliver latency and spot lost, duplicated or
//! reordered deliveries without asking anyone.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Which WebSocket protocol a run speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// The native gateway `/api/v1/ws` (acks with `message.sent`, `seq`, resume).
    Native,
    /// Door 002's `/ws/group/<name>/` (broadcast to the sender too, no ack).
    Door002,
}

/// Microseconds since the Unix epoch (the clock every process on the machine shares).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A probe decoded from a message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The sender's global socket index.
    pub sender: u32,
    /// The sender's counter: 1 for its first message of the run, then 2, 3, …
    pub n: u64,
    /// When it was sent, µs since the epoch.
    pub sent_us: u64,
}

impl Probe {
    /// The message text carrying this probe.
    pub fn text(&self) -> String {
        format!("L{}:{}:{}", self.sender, self.n, self.sent_us)
    }

    /// Parses `L<sender>:<n>:<t>`; `None` for any other text (system lines, other clients).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix('L')?.splitn(3, ':');
        Some(Self {
            sender: parts.next()?.parse().ok()?,
            n: parts.next()?.parse().ok()?,
            sent_us: parts.next()?.parse().ok()?,
        })
    }
}

/// The frame that sends `probe` into a chat. Native frames carry `request_id` (the send time,
/// echoed in the ack) and a `client_id` unique per run, as a real client's retry-safe send
/// would; door 002 frames are `{"action":"send_message","message":...}`.
pub fn send_frame(protocol: Protocol, chat_id: i64, probe: &Probe, run: u64) -> String {
    match protocol {
        Protocol::Native => format!(
            r#"{{"action":"send_message","chat_id":{chat_id},"message":"{}","client_id":"l{run}-{}-{}","request_id":{}}}"#,
            probe.text(),
            probe.sender,
            probe.n,
            probe.sent_us
        ),
        Protocol::Door002 => format!(
            r#"{{"action":"send_message","message":"{}"}}"#,
            probe.text()
        ),
    }
}

/// What the generator needs from a server frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// Native `ready`: each chat's `last_seq` when live delivery started.
    Ready(HashMap<i64, i64>),
    /// A message delivered to this socket (native `message.created`, door 002 broadcast).
    /// `seq` is 0 on door 002 (it has none).
    Delivered {
        /// The chat (0 on door 002).
        chat_id: i64,
        /// The message's seq in its chat (0 on door 002).
        seq: i64,
        /// The probe, when the text carries one.
        probe: Option<Probe>,
    },
    /// Native `message.sent`: the ack of this socket's own send.
    Acked {
        /// The chat.
        chat_id: i64,
        /// The stored seq.
        seq: i64,
        /// The echoed `request_id` (the send time in µs).
        request_id: Option<u64>,
    },
    /// Native `synced` after a resume.
    Synced,
    /// An error frame (native `error`, door 002 `{"action":"error"}`); `request_id` when echoed.
    Error {
        /// The echoed `request_id`, when the error answers a send.
        request_id: Option<u64>,
        /// The server's text.
        detail: String,
    },
    /// Door 002 `disconect`: the server is closing this socket.
    Refused(String),
    /// Anything else (typing, presence, member events, …).
    Other,
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(default)]
    chat_id: Option<i64>,
    #[serde(default)]
    seq: Option<i64>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
    #[serde(default)]
    request_id: Option<serde_json::Value>,
    #[serde(default)]
    chats: Option<HashMap<String, i64>>,
    #[serde(borrow, default)]
    detail: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

fn body_probe(raw: Option<&RawValue>) -> Option<Probe> {
    let body: Body<'_> = serde_json::from_str(raw?.get()).ok()?;
    Probe::parse(body.text.or(body.content)?.as_ref())
}

/// Decodes a server text frame of `protocol`. Frames that are not JSON give `Other`.
pub fn decode(protocol: Protocol, frame: &str) -> Incoming {
    let Ok(f) = serde_json::from_str::<Frame<'_>>(frame) else {
        return Incoming::Other;
    };
    let request_id = f.request_id.as_ref().and_then(serde_json::Value::as_u64);
    match protocol {
        Protocol::Native => match f.event.as_deref() {
            Some("message.created") => Incoming::Delivered {
                chat_id: f.chat_id.unwrap_or(0),
                seq: f.seq.unwrap_or(0),
                probe: body_probe(f.message),
            },
            Some("message.sent") => Incoming::Acked {
                chat_id: f.chat_id.unwrap_or(0),
                seq: f.seq.unwrap_or(0),
                request_id,
            },
            Some("ready") => Incoming::Ready(
                f.chats
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
                    .collect(),
            ),
            Some("synced") => Incoming::Synced,
            Some("error") => Incoming::Error {
                request_id,
                detail: f.detail.unwrap_or_default().into_owned(),
            },
            _ => Incoming::Other,
        },
        Protocol::Door002 => match f.action.as_deref() {
            Some("error") => Incoming::Error {
                request_id: None,
                detail: text_of(f.message),
            },
            Some("disconect") => Incoming::Refused(text_of(f.message)),
            Some(_) => Incoming::Other,
            None if f.message.is_some() => Incoming::Delivered {
                chat_id: 0,
                seq: 0,
                probe: body_probe(f.message),
            },
            None => Incoming::Other,
        },
    }
}

fn text_of(raw: Option<&RawValue>) -> String {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_round_trips_and_ignores_other_text() {
        let p = Probe {
            sender: 7,
            n: 42,
            sent_us: 1_700_000_000_000_000,
        };
        assert_eq!(Probe::parse(&p.text()), Some(p));
        assert_eq!(Probe::parse("alice joined the room"), None);
        assert_eq!(Probe::parse("L1:2"), None);
    }

    #[test]
    fn native_frames_decode() {
        let p = Probe {
            sender: 3,
            n: 1,
            sent_us: 9,
        };
        let created = format!(
            r#"{{"event":"message.created","chat_id":5,"seq":12,"message":{{"id":1,"text":"{}","author":{{"id":1,"username":"a"}}}}}}"#,
            p.text()
        );
        assert_eq!(
            decode(Protocol::Native, &created),
            Incoming::Delivered {
                chat_id: 5,
                seq: 12,
                probe: Some(p)
            }
        );
        let sent = r#"{"event":"message.sent","chat_id":5,"seq":13,"request_id":77,"message":{},"duplicate":false}"#;
        assert_eq!(
            decode(Protocol::Native, sent),
            Incoming::Acked {
                chat_id: 5,
                seq: 13,
                request_id: Some(77)
            }
        );
        let ready = r#"{"event":"ready","user":{"id":1},"chats":{"3":17,"5":2}}"#;
        assert_eq!(
            decode(Protocol::Native, ready),
            Incoming::Ready(HashMap::from([(3, 17), (5, 2)]))
        );
        let frame = send_frame(Protocol::Native, 5, &p, 1);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["message"], p.text());
        assert_eq!(v["request_id"], 9);
    }

    #[test]
    fn door002_frames_decode() {
        let p = Probe {
            sender: 1,
            n: 2,
            sent_us: 3,
        };
        let delivered = format!(
            r#"{{"message":{{"id":9,"content":"{}","timestamp":"x","from_user":{{"username":"a"}}}}}}"#,
            p.text()
        );
        assert_eq!(
            decode(Protocol::Door002, &delivered),
            Incoming::Delivered {
                chat_id: 0,
                seq: 0,
                probe: Some(p)
            }
        );
        assert_eq!(
            decode(
                Protocol::Door002,
                r#"{"action":"disconect","message":"Not a member"}"#
            ),
            Incoming::Refused("Not a member".into())
        );
        assert!(matches!(
            decode(Protocol::Door002, r#"{"action":"error","message":"bad"}"#),
            Incoming::Error { .. }
        ));
    }
}
