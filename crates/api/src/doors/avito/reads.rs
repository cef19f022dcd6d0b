//! Door 001's reads, whole as the task asks ("all chats", "all messages"), with a bounded memory
//! cost: the answer is one JSON array streamed page by page (chunked transfer encoding), each page
//! read by one indexed query only when the previous one has been handed to the socket.
//!
//! The first page is read before the status line, so an unknown id (404) or an unavailable
//! database (503) is answered as usual. A database fault in a later page ends the response
//! early, without its closing `]` and without the final chunk: the client sees an incomplete
//! body (a broken transfer), never a shorter list that looks whole. The server holds one page at
//! a time: about [`PAGE_BYTES`] of messages (the page's row count follows the sizes of the last
//! page's texts, [`MESSAGES_PAGE_MIN`]..=[`MESSAGES_PAGE_MAX`] rows) or [`CHATS_PAGE`] chats, plus
//! the ids of the user's chats (8 bytes each). The database connection is taken per page and
//! given back in between, so a slow reader holds none.

use actix_web::{HttpRequest, HttpResponse, web};
use chat_domain::{ChatId, UserId};
use chat_selectors::{
    ChatMembers, SandboxMessage, sandbox_chat, sandbox_chat_ids, sandbox_chats, sandbox_messages,
    sandbox_user,
};
use serde::Serialize;

use super::AvitoResult;
use super::body::{Body, required};
use crate::state::AppState;

/// What one page of `/messages/get` aims to hold, bytes of JSON (1 MiB).
pub const PAGE_BYTES: usize = 1 << 20;
/// Fewest messages a page asks for (a page of the longest texts: ~100 × 16 KiB).
pub const MESSAGES_PAGE_MIN: usize = 100;
/// Most messages a page asks for; the first page asks for 1,000.
pub const MESSAGES_PAGE_MAX: usize = 20_000;
/// Chats per page of `/chats/get`.
pub const CHATS_PAGE: usize = 200;
/// JSON bytes of a message besides its text's (ids, time, keys), for sizing pages.
const MESSAGE_OVERHEAD_BYTES: usize = 110;

/// `POST /chats/get {"user"}` → 200 `[{"id","name","users":[ids],"created_at"}]`, every chat of
/// the user, the chat with the newest message first; 404 unknown user (or one of another door).
pub(super) async fn get_chats(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> AvitoResult<HttpResponse> {
    let body = Body::read(&state, &req, payload).await?;
    let user = UserId(required("user", body.id("user", "user")?)?);
    sandbox_user(&state.store, user).await?;
    let ids = sandbox_chat_ids(&state.store, user).await?;
    let mut pages = ChatPages {
        state: state.clone(),
        ids,
        next: 0,
    };
    let first = pages.next_page().await?;
    Ok(stream_array(pages, first))
}

/// `POST /messages/get {"chat"}` → 200 `[{"id","chat","author","text","created_at"}]`, every
/// text message of the chat stored when the request came, oldest first; 404 unknown chat (or
/// one of another door).
pub(super) async fn get_messages(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> AvitoResult<HttpResponse> {
    let body = Body::read(&state, &req, payload).await?;
    let chat = ChatId(required("chat", body.id("chat", "chat")?)?);
    let up_to = sandbox_chat(&state.store, chat).await?.last_seq;
    let mut pages = MessagePages {
        state: state.clone(),
        chat,
        after: 0,
        up_to,
        limit: 1_000,
    };
    let first = pages.next_page().await?;
    Ok(stream_array(pages, first))
}

/// A list read page by page.
trait Pages: 'static {
    /// One item.
    type Item: Serialize;
    /// The next page, and whether it is the last.
    async fn next_page(&mut self) -> chat_selectors::Result<(Vec<Self::Item>, bool)>;
}

struct ChatPages {
    state: web::Data<AppState>,
    ids: Vec<ChatId>,
    next: usize,
}

impl Pages for ChatPages {
    type Item = ChatMembers;

    async fn next_page(&mut self) -> chat_selectors::Result<(Vec<ChatMembers>, bool)> {
        let end = (self.next + CHATS_PAGE).min(self.ids.len());
        let Some(ids) = self.ids.get(self.next..end).filter(|ids| !ids.is_empty()) else {
            return Ok((Vec::new(), true));
        };
        let page = sandbox_chats(&self.state.store, ids).await?;
        self.next = end;
        Ok((page, end == self.ids.len()))
    }
}

struct MessagePages {
    state: web::Data<AppState>,
    chat: ChatId,
    after: i64,
    up_to: i64,
    /// Rows the next page asks for.
    limit: usize,
}

impl Pages for MessagePages {
    type Item = SandboxMessage;

    async fn next_page(&mut self) -> chat_selectors::Result<(Vec<SandboxMessage>, bool)> {
        let page = sandbox_messages(
            &self.state.store,
            self.chat,
            self.after,
            self.up_to,
            self.limit as i64,
        )
        .await?;
        let last = page.len() < self.limit;
        if let Some(newest) = page.last() {
            self.after = newest.seq;
            let bytes: usize = page
                .iter()
                .map(|m| m.text.len() + MESSAGE_OVERHEAD_BYTES)
                .sum();
            let per_row = bytes / page.len();
            self.limit = (PAGE_BYTES / per_row.max(1)).clamp(MESSAGES_PAGE_MIN, MESSAGES_PAGE_MAX);
        }
        Ok((page, last))
    }
}

/// Where a streamed array is.
struct Cursor<P: Pages> {
    pages: P,
    /// The page to write next and whether it is the last (read ahead for the first, so errors
    /// come before the status).
    ready: Option<(Vec<P::Item>, bool)>,
    /// Whether an item has been written (a comma goes before every later one).
    any: bool,
    /// Whether `[` has been written.
    opened: bool,
}

/// 200 `application/json`: `first` and the pages after it as one JSON array, one chunk per page.
fn stream_array<P: Pages>(pages: P, first: (Vec<P::Item>, bool)) -> HttpResponse {
    let start = Cursor {
        pages,
        ready: Some(first),
        any: false,
        opened: false,
    };
    let chunks = futures_util::stream::unfold(Some(start), |cursor| async move {
        let mut cursor = cursor?;
        let (page, last) = match cursor.ready.take() {
            Some(ready) => ready,
            None => match cursor.pages.next_page().await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "door 001 list broken off: a later page failed");
                    return Some((Err(std::io::Error::other(error.to_string())), None));
                }
            },
        };
        let mut chunk = Vec::with_capacity(page.len() * 128 + 2);
        if !cursor.opened {
            chunk.push(b'[');
            cursor.opened = true;
        }
        for item in &page {
            if cursor.any {
                chunk.push(b',');
            }
            cursor.any = true;
            if let Err(error) = serde_json::to_writer(&mut chunk, item) {
                return Some((Err(std::io::Error::other(error)), None));
            }
        }
        if last {
            chunk.push(b']');
        }
        let bytes = web::Bytes::from(chunk);
        Some((Ok(bytes), (!last).then_some(cursor)))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(chunks)
}
