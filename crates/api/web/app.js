// The web client's screens: login, the chat list, a chat, members, dialogs.
//
// It speaks only the native REST API (api.js) and the gateway socket (socket.js); the state
// rules live in state.js. Every text from the server is put in the page with textContent, never
// as HTML.

import { api, ApiError, login, logout, onSessionEnd, register, setStoredUser, storedSession } from "./api.js";
import { Gateway } from "./socket.js";
import { ChatList, Timeline, lowerBound, refusalText } from "./state.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;
const TYPING_EVERY_MS = 2000;

/** Builds an element: `el("li", {class: "x", dataset: {seq: 1}}, child, "text")`. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

const S = {
  me: null,
  list: null,
  timelines: new Map(),
  seen: new Map(),
  open: null,
  online: new Map(),
  typing: new Map(),
  requests: new Map(),
  roles: new Map(),
  editing: null,
  lastTyping: new Map(),
  nodes: new Map(),
  rows: new Map(),
  memberCounts: new Map(),
  loadingOlder: false,
  gateway: null,
  firstRender: true,
};

// ---------------------------------------------------------------- session

function showLogin(reason) {
  setRegistering(false);
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason || "";
  $("login-form").username.focus();
}

function setRegistering(on) {
  $("login").classList.toggle("registering", on);
  $("tab-login").setAttribute("aria-selected", String(!on));
  $("tab-register").setAttribute("aria-selected", String(on));
  $("login-submit").textContent = on ? "Register" : "Log in";
  $("login-form").password.autocomplete = on ? "new-password" : "current-password";
}

function fieldErrors(err) {
  if (!(err instanceof ApiError)) return "The server cannot be reached.";
  if (!err.fields) return err.message;
  return Object.entries(err.fields)
    .map(([field, problems]) => `${field}: ${[].concat(problems).join(" ")}`)
    .join(" ");
}

async function submitLogin(ev) {
  ev.preventDefault();
  const f = ev.target;
  const registering = $("login").classList.contains("registering");
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    if (registering) await register(f.username.value.trim(), f.email.value.trim(), f.password.value, f.password2.value);
    else await login(f.username.value.trim(), f.password.value);
    f.reset();
    await start();
  } catch (err) {
    $("login-error").textContent = fieldErrors(err);
  } finally {
    $("login-submit").disabled = false;
  }
}

function endSession(reason) {
  if (S.gateway) S.gateway.stop();
  S.gateway = null;
  S.me = null;
  S.open = null;
  S.timelines.clear();
  S.rows.clear();
  S.memberCounts.clear();
  S.seen.clear();
  S.online.clear();
  S.requests.clear();
  showLogin(reason);
}

async function start() {
  const session = storedSession();
  if (!session) return showLogin();
  S.me = session.user;
  S.list = new ChatList(S.me.id);
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = S.me.username;
  try {
    S.list.load(await api.chats());
  } catch (err) {
    if (err.status === 401) return;
    $("notice").textContent = `Chats could not be loaded: ${err.message}`;
  }
  renderList();
  S.gateway = new Gateway({
    onFrame,
    onState: connectionState,
    syncPoint: () => S.list.syncPoint(S.seen),
    onEnd: (reason) => endSession(reason),
  });
  S.gateway.start();
}

// ---------------------------------------------------------------- connection

let offlineSince = 0;
function connectionState(state, code) {
  const banner = $("banner");
  if (state === "online") {
    banner.hidden = true;
    offlineSince = 0;
    return;
  }
  if (state === "offline") offlineSince = offlineSince || Date.now();
  if (!offlineSince) return;
  banner.hidden = false;
  banner.textContent =
    state === "connecting" ? "Offline: reconnecting…" : `Offline${code ? ` (${code})` : ""}: reconnecting soon…`;
}

function timeline(chatId) {
  let t = S.timelines.get(chatId);
  if (!t) {
    t = new Timeline();
    S.timelines.set(chatId, t);
  }
  return t;
}

function noteSeen(chatId, seq) {
  if (seq > (S.seen.get(chatId) ?? 0)) S.seen.set(chatId, seq);
}

let reloadTimer = null;
/** Reloads the chat list soon (debounced: several unknown chats at once cost one request). */
function reloadList() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => reloadListNow().catch(() => {}), 150);
}

function onFrame(f) {
  switch (f.event) {
    case "ready": {
      S.me = { ...S.me, ...f.user };
      let unknown = false;
      for (const [id, seq] of Object.entries(f.chats || {})) {
        const chatId = Number(id);
        if (!S.seen.has(chatId)) S.seen.set(chatId, S.list.get(chatId)?.last_seq ?? seq);
        if (!S.list.get(chatId)) unknown = true;
      }
      if (unknown) reloadList();
      resendPending();
      askPresence();
      if (S.open) S.gateway.send({ action: "presence", chat_id: S.open });
      break;
    }
    case "synced":
      if (f.complete === false) S.gateway.send({ action: "sync", chats: f.chats });
      break;
    case "message.sent":
    case "message.created":
      onMessage(f.chat_id, f.message);
      break;
    case "message.updated":
    case "message.deleted":
      onMessageChanged(f.chat_id, f.message);
      break;
    case "member.joined":
    case "member.left":
      onMembership(f);
      break;
    case "typing":
      onTyping(f);
      break;
    case "read":
      if (f.user_id === S.me.id) {
        S.list.onRead(f.chat_id, f.seq);
        scheduleList();
      }
      break;
    case "presence": {
      const set = S.online.get(f.chat_id) || new Set();
      if (f.online) set.add(f.user_id);
      else set.delete(f.user_id);
      S.online.set(f.chat_id, set);
      scheduleList();
      if (f.chat_id === S.open) renderHeader();
      break;
    }
    case "online":
      S.online.set(f.chat_id, new Set(f.user_ids));
      scheduleList();
      if (f.chat_id === S.open) renderHeader();
      break;
    case "chat.deleted":
      dropChat(f.chat_id, "This chat was deleted.");
      break;
    case "error":
      onError(f);
      break;
    default:
  }
}

function onMessage(chatId, message) {
  noteSeen(chatId, message.seq);
  if (!S.list.onMessage(chatId, message)) reloadList();
  const t = S.timelines.get(chatId);
  if (t) {
    const hadPending = t.pending.length;
    const result = t.upsert(message);
    if (chatId === S.open) {
      placeMessage(message, result);
      if (hadPending !== t.pending.length) renderPending();
    }
  }
  if (message.author) clearTyping(chatId, message.author.id);
  // A system line (a join, a leave, a rename) may change the chat's title or members.
  if (message.kind === "system") reloadList();
  if (chatId === S.open) markRead();
  scheduleList();
}

function onMessageChanged(chatId, message) {
  S.list.onMessageChanged(chatId, message);
  const t = S.timelines.get(chatId);
  if (t) {
    const result = t.upsert(message, true);
    if (chatId === S.open) placeMessage(message, result);
  }
  scheduleList();
}

function onMembership(f) {
  if (f.user.id === S.me.id) {
    if (f.event === "member.joined") reloadList();
    else dropChat(f.chat_id, f.by ? `You were removed from this chat.` : null);
    return;
  }
  if (f.chat_id !== S.open) return;
  // Presence events come on connect and disconnect: a member who joins while connected is
  // asked about.
  if (f.event === "member.joined") S.gateway.send({ action: "presence", chat_id: f.chat_id });
  else S.online.get(f.chat_id)?.delete(f.user.id);
  renderHeader();
  if (!$("members").hidden) loadMembers();
}

function dropChat(chatId, reason) {
  S.list.remove(chatId);
  S.timelines.delete(chatId);
  S.seen.delete(chatId);
  if (S.open === chatId) {
    closeChat();
    if (reason) $("notice").textContent = reason;
  }
  renderList();
}

function onError(f) {
  const req = S.requests.get(f.request_id);
  if (!req) {
    if (f.code !== "rate_limited" && f.code !== "not_authenticated") $("notice").textContent = f.detail || f.code;
    return;
  }
  S.requests.delete(f.request_id);
  if (req.kind !== "send") return;
  const t = timeline(req.chatId);
  if (f.code === "unavailable") {
    // The outcome is unknown: retrying with the same client_id never duplicates.
    setTimeout(() => sendPending(req.chatId, req.clientId), 1000 * (f.retry_after || 1));
    return;
  }
  t.fail(req.clientId, refusalText(f));
  if (req.chatId === S.open) renderPending();
}

// ---------------------------------------------------------------- sending

function sendPending(chatId, clientId) {
  const t = timeline(chatId);
  const entry = t.pending.find((p) => p.client_id === clientId);
  if (!entry) return;
  const id = S.gateway.send({ action: "send_message", chat_id: chatId, message: entry.text, client_id: clientId });
  S.requests.set(id, { kind: "send", chatId, clientId });
}

function resendPending() {
  S.gateway.drop((f) => f.action === "send_message" || f.action === "typing");
  for (const [chatId, t] of S.timelines) {
    for (const p of t.pending) if (p.status === "sending") sendPending(chatId, p.client_id);
  }
}

function newClientId() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

async function submitComposer(ev) {
  ev.preventDefault();
  const box = $("text");
  const text = box.value;
  if (!text.trim() || !S.open) return;
  const chatId = S.open;
  if (S.editing) {
    const { seq } = S.editing;
    try {
      onMessageChanged(chatId, await api.edit(chatId, seq, text));
      stopEditing();
    } catch (err) {
      $("notice").textContent = `Not saved: ${err.message}`;
    }
    return;
  }
  box.value = "";
  growComposer();
  const clientId = newClientId();
  timeline(chatId).addPending(clientId, text);
  renderPending();
  scrollToBottom();
  sendPending(chatId, clientId);
}

function startEditing(message) {
  S.editing = { chatId: message.chat_id, seq: message.seq };
  $("editing").hidden = false;
  $("text").value = message.text;
  growComposer();
  $("text").focus();
}

function stopEditing() {
  S.editing = null;
  $("editing").hidden = true;
  $("text").value = "";
  growComposer();
}

async function deleteMessage(message) {
  if (!confirm("Delete this message?")) return;
  try {
    await api.remove_message(message.chat_id, message.seq);
  } catch (err) {
    $("notice").textContent = `Not deleted: ${err.message}`;
  }
}

function growComposer() {
  const box = $("text");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight + 2, window.innerHeight * 0.4)}px`;
}

function onComposerKey(ev) {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $("composer").requestSubmit();
  } else if (ev.key === "Escape" && S.editing) {
    stopEditing();
  }
}

function onComposerInput() {
  growComposer();
  $("notice").textContent = "";
  if (!S.open || S.editing) return;
  const now = Date.now();
  if (now - (S.lastTyping.get(S.open) || 0) > TYPING_EVERY_MS) {
    S.lastTyping.set(S.open, now);
    S.gateway.send({ action: "typing", chat_id: S.open });
  }
}

// ---------------------------------------------------------------- typing, presence, read

function onTyping(f) {
  if (f.user.id === S.me.id) return;
  const map = S.typing.get(f.chat_id) || new Map();
  const prev = map.get(f.user.id);
  if (prev) clearTimeout(prev.timer);
  const timer = setTimeout(() => clearTyping(f.chat_id, f.user.id), f.expires_in_ms || 3000);
  map.set(f.user.id, { name: f.user.username, timer });
  S.typing.set(f.chat_id, map);
  if (f.chat_id === S.open) renderTyping();
}

function clearTyping(chatId, userId) {
  const map = S.typing.get(chatId);
  if (!map || !map.has(userId)) return;
  clearTimeout(map.get(userId).timer);
  map.delete(userId);
  if (chatId === S.open) renderTyping();
}

function renderTyping() {
  const names = [...(S.typing.get(S.open)?.values() || [])].map((t) => t.name);
  $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

/** Presence of the newest direct chats, paced by the socket's queue. */
function askPresence() {
  const direct = S.list.ordered().filter((c) => c.kind === "direct").slice(0, 20);
  for (const c of direct) S.gateway.send({ action: "presence", chat_id: c.id });
}

function isOnline(chat) {
  return Boolean(chat.peer && S.online.get(chat.id)?.has(chat.peer.id));
}

let readTimer = null;
function markRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    if (!S.open || document.visibilityState !== "visible") return;
    const chat = S.list.get(S.open);
    if (!chat || chat.last_seq <= chat.last_read_seq || !nearBottom() || !showingNewest()) return;
    S.gateway.send({ action: "read", chat_id: chat.id, seq: chat.last_seq });
    S.list.onRead(chat.id, chat.last_seq);
    scheduleList();
  }, 200);
}

// ---------------------------------------------------------------- chat list

let listFrame = 0;
function scheduleList() {
  if (!listFrame) listFrame = requestAnimationFrame(() => {
    listFrame = 0;
    renderList();
  });
}

function chatName(chat) {
  if (chat.kind === "direct") return chat.peer ? chat.peer.username : "Direct chat";
  return chat.title || chat.name || `Chat ${chat.id}`;
}

function preview(chat) {
  const m = chat.last_message;
  if (!m) return { text: "No messages yet", system: true };
  if (m.deleted) return { text: "message deleted", system: true };
  if (m.kind === "system") return { text: m.text, system: true };
  const who = m.author && m.author.id === S.me.id ? "You" : m.author?.username;
  return { text: `${who}: ${m.text}`, system: false };
}

/** One chat-list row; `key` sums up what it shows, so an unchanged row is kept as it is. */
function chatRow(chat) {
  const p = preview(chat);
  const unread = chat.unread_count > 0;
  const name = chatName(chat);
  const online = chat.kind === "direct" ? isOnline(chat) : null;
  const current = chat.id === S.open;
  const key = JSON.stringify([name, p.text, p.system, chat.unread_count, online, current, chat.is_private]);
  const cached = S.rows.get(chat.id);
  if (cached && cached.key === key) return cached.node;
  const label = `${name}${unread ? `, ${chat.unread_count} unread` : ""}`;
  const node = el("li", { dataset: { chatId: chat.id } },
    el("button", {
      type: "button", "aria-label": label, "aria-current": current ? "true" : "false",
      onclick: () => openChat(chat.id),
    },
    el("span", { class: "name" },
      online === null ? null : el("span", { class: `dot${online ? " online" : ""}`, "aria-hidden": "true" }),
      name, chat.is_private ? " 🔒" : null),
    el("span", { class: `preview${p.system ? " system" : ""}`, text: p.text }),
    unread ? el("span", { class: "badge", text: String(chat.unread_count) }) : null));
  S.rows.set(chat.id, { key, node });
  return node;
}

/**
 * Draws the chat list in activity order. Rows whose content did not change are kept and moved
 * only when their place changed: a live message in a list of 500 chats touches one or two rows,
 * not 500 (BENCHMARKS.md, "Web client").
 */
function renderList() {
  const ul = $("chat-list");
  const chats = S.list.ordered();
  let at = ul.firstChild;
  for (const chat of chats) {
    const node = chatRow(chat);
    if (node === at) {
      at = at.nextSibling;
    } else {
      ul.insertBefore(node, at);
    }
  }
  while (at) {
    const next = at.nextSibling;
    at.remove();
    at = next;
  }
  for (const id of S.rows.keys()) if (!S.list.get(id)) S.rows.delete(id);
  $("no-chats").hidden = chats.length > 0;
  if (S.firstRender) {
    S.firstRender = false;
    performance.mark("chat-list-rendered");
  }
}

// ---------------------------------------------------------------- a chat

function nearBottom() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
}

function scrollToBottom() {
  if (S.open && !showingNewest()) renderMessages();
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
}

function closeChat() {
  S.open = null;
  S.editing = null;
  S.nodes.clear();
  $("messages").replaceChildren();
  $("pending").replaceChildren();
  $("composer").hidden = true;
  $("members").hidden = true;
  $("members-button").hidden = true;
  $("leave-button").hidden = true;
  $("rename-chat").hidden = true;
  $("chat-title").textContent = "Pick a chat";
  $("chat-sub").textContent = "";
  $("typing").textContent = "";
  $("history-state").textContent = "";
  $("app").classList.remove("in-chat");
}

async function openChat(chatId) {
  const chat = S.list.get(chatId);
  if (!chat) return;
  if (S.editing) stopEditing();
  S.open = chatId;
  $("app").classList.add("in-chat");
  $("composer").hidden = false;
  $("notice").textContent = "";
  $("members").hidden = true;
  const group = chat.kind === "group";
  $("members-button").hidden = !group;
  $("leave-button").hidden = !group;
  renderHeader();
  renderTyping();
  renderList();
  const t = timeline(chatId);
  renderMessages();
  if (!t.loaded) {
    $("history-state").textContent = "Loading…";
    try {
      const page = await api.history(chatId, null, PAGE);
      t.addPage(page.messages, page.has_more, false);
      for (const m of page.messages) noteSeen(chatId, m.seq);
    } catch (err) {
      $("history-state").textContent = `History could not be loaded: ${err.message}`;
      return;
    }
    if (S.open !== chatId) return;
    renderMessages();
  }
  if (!S.seen.has(chatId)) S.seen.set(chatId, t.newestSeq());
  scrollToBottom();
  S.gateway.send({ action: "presence", chat_id: chatId });
  if (group) loadRole(chatId);
  markRead();
  $("text").focus();
}

async function loadRole(chatId) {
  try {
    const members = await api.members(chatId);
    const me = members.find((m) => m.user.id === S.me.id);
    S.roles.set(chatId, me ? me.role : null);
    if (chatId === S.open) renderHeader(members.length);
  } catch {
    /* the members panel shows its own error */
  }
}

function renderHeader(count) {
  const chat = S.list.get(S.open);
  if (!chat) return;
  if (count) S.memberCounts.set(chat.id, count);
  const memberCount = S.memberCounts.get(chat.id);
  $("chat-title").textContent = chatName(chat);
  const role = S.roles.get(chat.id);
  $("rename-chat").hidden = !(chat.kind === "group" && (role === "owner" || role === "admin"));
  const online = S.online.get(chat.id)?.size || 0;
  if (chat.kind === "direct") {
    $("chat-sub").textContent = isOnline(chat) ? "online" : "offline";
  } else {
    const parts = [chat.is_private ? "private group" : "public group"];
    if (memberCount) parts.push(`${memberCount} member${memberCount === 1 ? "" : "s"}`);
    parts.push(`${online} online`);
    $("chat-sub").textContent = parts.join(" · ");
  }
}

function historyState(t) {
  $("history-state").textContent = !t.loaded ? "" : t.hasMoreBefore ? "Scroll up for older messages" : "Beginning of the chat";
}

function time(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function messageNode(m) {
  if (m.kind === "system") {
    return el("li", { class: "msg system", dataset: { seq: m.seq }, text: m.text });
  }
  const mine = m.author && m.author.id === S.me.id;
  const cls = `msg${mine ? " mine" : ""}${m.deleted ? " deleted" : ""}`;
  const meta = el("span", { class: "meta" }, el("time", { datetime: m.created_at, text: time(m.created_at) }),
    m.edited_at && !m.deleted ? "edited" : null);
  if (mine && !m.deleted) {
    meta.append(
      el("button", { type: "button", class: "edit", "aria-label": "Edit message", text: "Edit", onclick: () => startEditing(m) }),
      el("button", { type: "button", class: "delete", "aria-label": "Delete message", text: "Delete", onclick: () => deleteMessage(m) }));
  }
  return el("li", { class: cls, dataset: { seq: m.seq } },
    mine ? null : el("div", { class: "who", text: m.author ? m.author.username : "unknown" }),
    el("div", { class: "body", text: m.deleted ? "message deleted" : m.text }),
    meta);
}

/** The most message lines in the page at once: a chat scrolled far back keeps a window of them,
 * drawn again from memory when scrolled to (BENCHMARKS.md, "Web client"). */
const WINDOW = 300;

function draw(m) {
  const node = messageNode(m);
  S.nodes.set(m.seq, node);
  return node;
}

/** Draws the newest messages of the open chat (two pages of them). */
function renderMessages() {
  const t = timeline(S.open);
  S.nodes.clear();
  const list = t.messages;
  const frag = document.createDocumentFragment();
  for (let i = Math.max(0, list.length - 2 * PAGE); i < list.length; i++) frag.append(draw(list[i]));
  $("messages").replaceChildren(frag);
  renderPending();
  historyState(t);
}

/** The seqs of the first and last drawn lines, or null when none is. */
function drawn() {
  const ol = $("messages");
  if (!ol.firstElementChild) return null;
  return { lo: Number(ol.firstElementChild.dataset.seq), hi: Number(ol.lastElementChild.dataset.seq) };
}

/** Whether the newest loaded message of the open chat is drawn (new lines are drawn as they come). */
function showingNewest() {
  const t = timeline(S.open);
  return !t.messages.length || S.nodes.has(t.newestSeq());
}

/** Removes drawn lines beyond the window from the top (`fromTop`, keeping the view still) or the bottom. */
function trimWindow(fromTop) {
  const ol = $("messages");
  if (S.nodes.size <= WINDOW) return;
  const s = $("scroller");
  const height = s.scrollHeight;
  while (S.nodes.size > WINDOW) {
    const node = fromTop ? ol.firstElementChild : ol.lastElementChild;
    S.nodes.delete(Number(node.dataset.seq));
    node.remove();
  }
  if (fromTop) s.scrollTop -= height - s.scrollHeight;
}

/** Shows one message change in the open chat without redrawing the others. */
function placeMessage(m, result) {
  if (result.change === "duplicate") return;
  const old = S.nodes.get(m.seq);
  if (result.change === "replaced") {
    if (old) old.replaceWith(draw(m));
    return;
  }
  // A new line is drawn only next to drawn ones: the drawn lines stay one run of seqs.
  const list = timeline(S.open).messages;
  const prev = list[result.index - 1];
  const next = list[result.index + 1];
  const prevDrawn = prev && S.nodes.has(prev.seq);
  const nextDrawn = next && S.nodes.has(next.seq);
  if (!prevDrawn && !nextDrawn && S.nodes.size) return;
  const stick = nearBottom();
  $("messages").insertBefore(draw(m), nextDrawn ? S.nodes.get(next.seq) : null);
  if (!nextDrawn) trimWindow(true);
  if (stick) scrollToBottom();
}

function renderPending() {
  const t = timeline(S.open);
  $("pending").replaceChildren(...t.pending.map((p) => el("li", {
    class: `msg mine pending${p.status === "failed" ? " failed" : ""}`, dataset: { clientId: p.client_id },
  },
  el("div", { class: "body", text: p.text }),
  el("span", { class: "meta" },
    p.status === "failed" ? el("span", { class: "reason", text: `Not sent: ${p.reason}` }) : el("span", { text: "sending…" }),
    p.status === "failed" ? el("button", { type: "button", text: "Retry", onclick: () => {
      t.retry(p.client_id);
      renderPending();
      sendPending(S.open, p.client_id);
    } }) : null,
    p.status === "failed" ? el("button", { type: "button", text: "Discard", onclick: () => {
      t.settle(p.client_id);
      renderPending();
    } }) : null))));
}

/** Draws `messages` (older than every drawn line, oldest first) above the drawn ones. */
function drawOlder(messages) {
  const s = $("scroller");
  const height = s.scrollHeight;
  const frag = document.createDocumentFragment();
  for (const m of messages) frag.append(draw(m));
  $("messages").prepend(frag);
  s.scrollTop += s.scrollHeight - height;
  trimWindow(false);
}

/** Scrolled near the top: older lines, from memory when loaded before, else the next page. */
async function loadOlder() {
  const chatId = S.open;
  const t = timeline(chatId);
  if (S.loadingOlder || !t.loaded) return;
  const d = drawn();
  const at = d ? lowerBound(t.messages, d.lo) : t.messages.length;
  if (at > 0) return drawOlder(t.messages.slice(Math.max(0, at - PAGE), at));
  if (!t.hasMoreBefore) return;
  S.loadingOlder = true;
  $("history-state").textContent = "Loading older messages…";
  try {
    const page = await api.history(chatId, t.oldestSeq(), PAGE);
    t.addPage(page.messages, page.has_more, true);
    // The chat may have been closed, reopened or redrawn meanwhile: draw at most a page, next
    // to whatever is the top line now.
    if (S.open !== chatId || S.timelines.get(chatId) !== t) return;
    const first = drawn();
    const top = first ? lowerBound(t.messages, first.lo) : t.messages.length;
    drawOlder(t.messages.slice(Math.max(0, top - PAGE), top));
    historyState(t);
  } catch (err) {
    if (S.open === chatId) $("history-state").textContent = `Older messages could not be loaded: ${err.message}`;
  } finally {
    S.loadingOlder = false;
  }
}

/** Scrolled near the bottom of the drawn lines while newer ones are loaded: draws them. */
function loadNewer() {
  const t = timeline(S.open);
  const d = drawn();
  if (!d) return;
  const from = lowerBound(t.messages, d.hi + 1);
  const frag = document.createDocumentFragment();
  for (const m of t.messages.slice(from, from + PAGE)) frag.append(draw(m));
  $("messages").append(frag);
  trimWindow(true);
}

function onScroll() {
  if ($("scroller").scrollTop < 400) loadOlder();
  if (!nearBottom()) return;
  if (showingNewest()) markRead();
  else loadNewer();
}

// ---------------------------------------------------------------- members

async function loadMembers() {
  const chatId = S.open;
  $("members-error").textContent = "";
  let members;
  try {
    members = await api.members(chatId);
  } catch (err) {
    $("members-error").textContent = err.message;
    return;
  }
  if (S.open !== chatId) return;
  const me = members.find((m) => m.user.id === S.me.id);
  const myRole = me ? me.role : null;
  S.roles.set(chatId, myRole);
  renderHeader(members.length);
  $("invite-form").hidden = !(myRole === "owner" || myRole === "admin");
  const online = S.online.get(chatId) || new Set();
  const act = (label, fn) => el("button", { type: "button", text: label, onclick: async () => {
    try {
      await fn();
      loadMembers();
    } catch (err) {
      $("members-error").textContent = err.message;
    }
  } });
  $("member-list").replaceChildren(...members.map((m) => {
    const other = m.user.id !== S.me.id;
    const canRemove = other && (myRole === "owner" || (myRole === "admin" && m.role === "member"));
    return el("li", { dataset: { userId: m.user.id } },
      el("span", { class: `dot${online.has(m.user.id) ? " online" : ""}`, "aria-label": online.has(m.user.id) ? "online" : "offline" }),
      el("span", { text: m.user.username }),
      el("span", { class: "role", text: m.role }),
      el("span", { class: "spacer" }),
      other && myRole === "owner" && m.role === "member" ? act("Make admin", () => api.setRole(chatId, m.user.id, "admin")) : null,
      other && myRole === "owner" && m.role === "admin" ? act("Make member", () => api.setRole(chatId, m.user.id, "member")) : null,
      other && myRole === "owner" ? act("Make owner", () => api.setRole(chatId, m.user.id, "owner")) : null,
      canRemove ? act("Remove", () => api.remove(chatId, m.user.id)) : null);
  }));
}

let inviteTimer = null;
function onInviteSearch() {
  clearTimeout(inviteTimer);
  const q = $("invite-search").value.trim();
  inviteTimer = setTimeout(async () => {
    if (!q) return $("invite-results").replaceChildren();
    try {
      const users = await api.searchUsers(q);
      $("invite-results").replaceChildren(...users.filter((u) => u.id !== S.me.id).map((u) =>
        el("li", {}, el("span", { text: u.username }), el("span", { class: "spacer" }),
          el("button", { type: "button", text: "Invite", "aria-label": `Invite ${u.username}`, onclick: async () => {
            try {
              await api.invite(S.open, u.id);
              $("invite-search").value = "";
              $("invite-results").replaceChildren();
              loadMembers();
            } catch (err) {
              $("members-error").textContent = err.message;
            }
          } }))));
    } catch (err) {
      $("members-error").textContent = err.message;
    }
  }, 200);
}

// ---------------------------------------------------------------- dialogs

/**
 * Opens the dialog with `body` (nodes); `submit()` runs on OK and closes it when it resolves,
 * showing the server's reason when it throws.
 */
function dialog(title, body, submit, okLabel = "OK") {
  const d = $("dialog");
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(...body);
  $("dialog-error").textContent = "";
  $("dialog-ok").textContent = okLabel;
  $("dialog-ok").hidden = !submit;
  $("dialog-form").onsubmit = async (ev) => {
    ev.preventDefault();
    if (!submit) return d.close();
    try {
      await submit();
      d.close();
    } catch (err) {
      $("dialog-error").textContent = fieldErrors(err);
    }
  };
  d.showModal();
  const first = d.querySelector("input");
  if (first) first.focus();
}

function searchDialog(title, placeholder, search, row) {
  const input = el("input", { placeholder, autocomplete: "off", "aria-label": placeholder });
  const results = el("ul", { class: "results", "aria-label": "Results" });
  let timer = null;
  const run = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        const items = await search(input.value.trim());
        results.replaceChildren(...items.map(row));
        if (!items.length) results.replaceChildren(el("li", { class: "muted", text: "Nothing found" }));
      } catch (err) {
        $("dialog-error").textContent = err.message;
      }
    }, 200);
  };
  input.addEventListener("input", run);
  dialog(title, [el("label", {}, placeholder, input), results], null);
  run();
}

function addAndOpen(chat) {
  $("dialog").close();
  reloadListNow().then(() => openChat(chat.id));
}

async function reloadListNow() {
  S.list.load(await api.chats());
  for (const c of S.list.chats.values()) if (!S.seen.has(c.id)) S.seen.set(c.id, c.last_seq);
  renderList();
  if (S.open) renderHeader();
}

function newDirect() {
  searchDialog("New direct chat", "Find a user by name", async (q) => (q ? api.searchUsers(q) : []), (u) =>
    el("li", {}, el("span", { text: u.username }), el("span", { class: "spacer" }),
      u.id === S.me.id ? el("span", { class: "muted", text: "you" }) :
        el("button", { type: "button", text: "Chat", "aria-label": `Chat with ${u.username}`, onclick: async () => {
          try {
            addAndOpen(await api.openDirect(u.id));
          } catch (err) {
            $("dialog-error").textContent = err.message;
          }
        } })));
}

function browseGroups() {
  searchDialog("Public groups", "Search groups", (q) => api.publicGroups(q), (g) => {
    const member = S.list.get(g.id);
    return el("li", {}, el("span", { text: g.title }), g.name ? el("span", { class: "muted", text: `@${g.name}` }) : null,
      el("span", { class: "spacer" }),
      el("button", { type: "button", text: member ? "Open" : "Join", "aria-label": `${member ? "Open" : "Join"} ${g.title}`, onclick: async () => {
        try {
          if (!member) await api.join(g.id);
          addAndOpen(g);
        } catch (err) {
          $("dialog-error").textContent = err.message;
        }
      } }));
  });
}

function newGroup() {
  const title = el("input", { name: "title", required: true, maxlength: 128 });
  const name = el("input", { name: "name", placeholder: "optional: letters, digits, _ . -" });
  const priv = el("input", { type: "checkbox", name: "private" });
  dialog("New group", [
    el("label", {}, "Title", title),
    el("label", {}, "Address (optional)", name),
    el("label", { class: "check" }, priv, "Private (invite only)"),
  ], async () => {
    const chat = await api.createGroup(title.value.trim(), name.value.trim(), priv.checked);
    await reloadListNow();
    openChat(chat.id);
  }, "Create");
}

function renameMe() {
  const input = el("input", { value: S.me.username, autocomplete: "username" });
  dialog("Change username", [el("label", {}, "New username", input)], async () => {
    const user = await api.rename(input.value.trim());
    S.me = { ...S.me, username: user.username };
    setStoredUser(user);
    $("me").textContent = user.username;
  }, "Save");
}

function renameChat() {
  const chatId = S.open;
  const chat = S.list.get(chatId);
  if (!chat) return;
  const input = el("input", { name: "title", value: chat.title || "", required: true, maxlength: 128 });
  dialog("Rename group", [el("label", {}, "Title", input)], async () => {
    await api.renameChat(chatId, input.value.trim());
    await reloadListNow();
  }, "Save");
}

async function leaveOpen() {
  const chatId = S.open;
  if (!chatId || !confirm("Leave this group?")) return;
  try {
    await api.leave(chatId);
    dropChat(chatId, null);
  } catch (err) {
    $("notice").textContent = err.message;
  }
}

function toggleMenu(show) {
  const open = show ?? $("menu").hidden;
  $("menu").hidden = !open;
  $("me").setAttribute("aria-expanded", String(open));
  if (open) $("menu").querySelector("button").focus();
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("tab-login").onclick = () => setRegistering(false);
  $("tab-register").onclick = () => setRegistering(true);
  $("login-form").addEventListener("submit", submitLogin);
  $("composer").addEventListener("submit", submitComposer);
  $("text").addEventListener("keydown", onComposerKey);
  $("text").addEventListener("input", onComposerInput);
  $("cancel-edit").onclick = stopEditing;
  $("scroller").addEventListener("scroll", onScroll, { passive: true });
  $("new-direct").onclick = newDirect;
  $("new-group").onclick = newGroup;
  $("browse").onclick = browseGroups;
  $("me").onclick = () => toggleMenu();
  $("menu").addEventListener("keydown", (ev) => ev.key === "Escape" && toggleMenu(false));
  $("rename").onclick = () => { toggleMenu(false); renameMe(); };
  $("logout").onclick = async () => { toggleMenu(false); await logout(false).catch(() => {}); endSession(); };
  $("logout-all").onclick = async () => {
    toggleMenu(false);
    await logout(true).catch(() => {});
    endSession("Logged out everywhere.");
  };
  $("back").onclick = () => { closeChat(); renderList(); };
  $("members-button").onclick = () => {
    $("members").hidden = !$("members").hidden;
    if (!$("members").hidden) loadMembers();
  };
  $("close-members").onclick = () => { $("members").hidden = true; };
  $("invite-search").addEventListener("input", onInviteSearch);
  $("invite-form").addEventListener("submit", (ev) => ev.preventDefault());
  $("leave-button").onclick = leaveOpen;
  $("rename-chat").onclick = renameChat;
  $("dialog-cancel").onclick = () => $("dialog").close();
  document.addEventListener("visibilitychange", markRead);
  // Another tab logged out (or in as someone else): follow it.
  window.addEventListener("storage", (ev) => {
    if (ev.key !== "chat.session") return;
    const session = storedSession();
    if (!session) endSession("Logged out in another tab.");
    else if (S.me && session.user.id !== S.me.id) location.reload();
  });
  onSessionEnd((reason) => endSession(reason));
}

wire();
start();
