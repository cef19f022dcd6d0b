// The client's chat state, with no DOM and no network, so `node --test` checks it (e2e/*.test.mjs).
//
// Rules it keeps (docs/native-api.md, "The gateway WebSocket"): per chat a message is identified by its
// `seq` (1, 2, 3, … without gaps); a message seen twice (a live event and a history page, a
// resume replay after a reconnect) is shown once; an own send is shown at once as pending under
// its `client_id` and replaced by the stored message when the acknowledgement (or the same
// message from a replay) comes back.

/** Index of the first message whose seq is >= `seq` in `list` (sorted by seq), by bisection. */
export function lowerBound(list, seq) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The messages of one chat that this page has loaded, plus its own sends not yet stored. */
export class Timeline {
  constructor() {
    /** Stored messages, oldest first, unique by seq. */
    this.messages = [];
    /** Older pages exist on the server (until a history page says `has_more: false`). */
    this.hasMoreBefore = true;
    /** The newest page has been loaded (live messages alone do not make a history). */
    this.loaded = false;
    /** Own sends not yet acknowledged: `{client_id, text, status: "sending"|"failed", reason}`. */
    this.pending = [];
  }

  oldestSeq() {
    return this.messages.length ? this.messages[0].seq : null;
  }

  newestSeq() {
    return this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
  }

  /**
   * Puts a stored message in its place. `replace` (an edit or a delete) overwrites a message
   * already there; otherwise a second copy of a seq changes nothing. A message carrying the
   * `client_id` of a pending send ends that pending send.
   * Returns `{change: "added"|"replaced"|"duplicate", index}`.
   */
  upsert(message, replace = false) {
    this.settle(message.client_id);
    const list = this.messages;
    const index = lowerBound(list, message.seq);
    if (index < list.length && list[index].seq === message.seq) {
      if (!replace) return { change: "duplicate", index };
      list[index] = message;
      return { change: "replaced", index };
    }
    list.splice(index, 0, message);
    return { change: "added", index };
  }

  /** Merges a history page (oldest first); `hasMore` is the page's `has_more`. */
  addPage(messages, hasMore, older) {
    const added = [];
    for (const m of messages) {
      if (this.upsert(m).change === "added") added.push(m);
    }
    if (older || !this.loaded) this.hasMoreBefore = hasMore;
    this.loaded = true;
    return added;
  }

  /** Adds an own send, shown at once as "sending". */
  addPending(clientId, text) {
    const entry = { client_id: clientId, text, status: "sending", reason: null };
    this.pending.push(entry);
    return entry;
  }

  /** Marks a pending send failed with the server's reason (it stays, to be retried). */
  fail(clientId, reason) {
    const entry = this.pending.find((p) => p.client_id === clientId);
    if (entry) {
      entry.status = "failed";
      entry.reason = reason;
    }
    return entry;
  }

  /** A pending send goes back to "sending" (retried with the same client_id). */
  retry(clientId) {
    const entry = this.pending.find((p) => p.client_id === clientId);
    if (entry) {
      entry.status = "sending";
      entry.reason = null;
    }
    return entry;
  }

  /** Removes the pending send of `clientId`, if any; returns whether there was one. */
  settle(clientId) {
    if (!clientId) return false;
    const i = this.pending.findIndex((p) => p.client_id === clientId);
    if (i < 0) return false;
    this.pending.splice(i, 1);
    return true;
  }
}

/** Activity time of a chat for ordering: its newest message, else its creation. */
function activity(chat) {
  return Date.parse(chat.last_message_at || chat.created_at) || 0;
}

/**
 * The user's chats (`GET /api/v1/chats` items) with unread counts kept up to date by live
 * events: unread = `last_seq - last_read_seq`, never below zero.
 */
export class ChatList {
  constructor(meId) {
    this.meId = meId;
    this.chats = new Map();
  }

  /**
   * Replaces the list with a fresh `GET /api/v1/chats` answer. A chat's newest message and read
   * marker never move back: a live message or read that arrived while the answer was on its
   * way is kept.
   */
  load(items) {
    const before = this.chats;
    this.chats = new Map();
    for (const item of items) {
      const chat = { ...item, last_read_seq: item.last_seq - item.unread_count };
      const old = before.get(chat.id);
      if (old && old.last_seq > chat.last_seq) {
        chat.last_seq = old.last_seq;
        chat.last_message = old.last_message;
        chat.last_message_at = old.last_message_at;
      }
      if (old) chat.last_read_seq = Math.max(chat.last_read_seq, old.last_read_seq);
      chat.unread_count = Math.max(0, chat.last_seq - chat.last_read_seq);
      this.chats.set(chat.id, chat);
    }
  }

  get(id) {
    return this.chats.get(id);
  }

  /** Chats by newest activity first (ties: newer chat first). */
  ordered() {
    return [...this.chats.values()].sort((a, b) => activity(b) - activity(a) || b.id - a.id);
  }

  /**
   * A message of chat `chatId` arrived (live, replayed or acknowledged). Returns false when the
   * chat is not in the list (the caller reloads the list).
   */
  onMessage(chatId, message) {
    const chat = this.chats.get(chatId);
    if (!chat) return false;
    if (message.seq >= chat.last_seq) {
      chat.last_seq = message.seq;
      chat.last_message = message;
      chat.last_message_at = message.created_at;
    }
    // Own lines are never unread: the server moves the sender's marker (docs/native-api.md, "REST").
    if (message.author && message.author.id === this.meId) {
      chat.last_read_seq = Math.max(chat.last_read_seq, message.seq);
    }
    chat.unread_count = Math.max(0, chat.last_seq - chat.last_read_seq);
    return true;
  }

  /** An edit or a delete: the preview follows when it is the newest message. */
  onMessageChanged(chatId, message) {
    const chat = this.chats.get(chatId);
    if (chat && chat.last_message && chat.last_message.seq === message.seq) {
      chat.last_message = message;
    }
  }

  /** The read marker of the user moved (this tab, another tab, another device). */
  onRead(chatId, seq) {
    const chat = this.chats.get(chatId);
    if (!chat) return;
    chat.last_read_seq = Math.max(chat.last_read_seq, seq);
    chat.unread_count = Math.max(0, chat.last_seq - chat.last_read_seq);
  }

  remove(chatId) {
    this.chats.delete(chatId);
  }

  /** `{chat_id: last seq seen}` of every chat, for resuming the gateway after a reconnect. */
  syncPoint(seen) {
    const out = {};
    for (const id of this.chats.keys()) out[id] = seen.get(id) ?? this.chats.get(id).last_seq;
    return out;
  }
}

/**
 * Delay before reconnect attempt `attempt` (0, 1, 2, …) in ms: 500 ms doubling up to 15 s, with
 * ±30 % jitter so that clients of a restarted server do not all come back at once.
 */
export function backoffMs(attempt, random = Math.random) {
  const base = Math.min(15000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.7 + 0.6 * random()));
}

/** The `exp` (Unix seconds) of a JWT, or 0 when it cannot be read. */
export function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(globalThis.atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return Number(json.exp) || 0;
  } catch {
    return 0;
  }
}

/** The text to show for the reason of a refused send (a gateway `error` frame). */
export function refusalText(frame) {
  if (frame.code === "rate_limited" && frame.retry_after != null) {
    return `${frame.detail} (wait ${frame.retry_after} s)`;
  }
  return frame.detail || frame.code || "refused";
}
