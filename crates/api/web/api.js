// The native REST API (/api/v1) with the session's tokens.
//
// Tokens live in localStorage so every tab of the browser shares one session. The access token
// (15 min by default) is refreshed silently: before it expires, and once more when a request
// answers 401. Refreshing is done under a Web Lock held by one tab at a time, and the tab
// re-reads the stored pair inside it: a refresh token may be presented only once (presenting a
// rotated one again ends every session of the user), so two tabs must never both present it.

import { tokenExpiry } from "./state.js";

const KEY = "chat.session";

/** An API refusal: `status`, the body's `code` and `detail` (and `fields` for validation). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || "http_" + status;
    this.fields = body?.fields || null;
    this.retryAfter = null;
  }
}

export function storedSession() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

function store(session) {
  if (session) localStorage.setItem(KEY, JSON.stringify(session));
  else localStorage.removeItem(KEY);
}

/** Called with the reason when the session ends and cannot be refreshed. */
let onExpired = () => {};
export function onSessionEnd(fn) {
  onExpired = fn;
}

async function request(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { detail: text.slice(0, 200) };
  }
  if (!res.ok) {
    const err = new ApiError(res.status, json);
    err.retryAfter = Number(res.headers.get("Retry-After")) || null;
    throw err;
  }
  return json;
}

let refreshing = null;

/** Gets a new token pair for the stored refresh token; one tab at a time. */
export function refresh() {
  if (refreshing) return refreshing;
  const before = storedSession();
  const run = async () => {
    const current = storedSession();
    if (!current) throw new ApiError(401, { detail: "Logged out.", code: "not_authenticated" });
    // Another tab refreshed while this one waited for the lock: use its pair.
    if (before && current.refresh !== before.refresh) return current;
    try {
      const pair = await request("POST", "/api/v1/auth/login/refresh/", { refresh: current.refresh });
      const next = { ...current, access: pair.access, refresh: pair.refresh };
      store(next);
      return next;
    } catch (err) {
      if (err.status === 401 || err.status === 400) {
        store(null);
        onExpired(`Your session ended: ${err.message} Log in again.`);
      }
      throw err;
    }
  };
  const locked = navigator.locks ? navigator.locks.request("chat-refresh", run) : run();
  refreshing = locked.finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** A valid access token, refreshed first when it expires within 30 s. */
export async function accessToken() {
  const session = storedSession();
  if (!session) throw new ApiError(401, { detail: "Not logged in.", code: "not_authenticated" });
  if (tokenExpiry(session.access) - 30 < Date.now() / 1000) return (await refresh()).access;
  return session.access;
}

/** A request with the session's bearer token; a 401 refreshes once and tries again. */
export async function call(method, path, body) {
  try {
    return await request(method, path, body, await accessToken());
  } catch (err) {
    if (err.status !== 401) throw err;
    const next = await refresh();
    return request(method, path, body, next.access);
  }
}

export async function login(username, password) {
  const pair = await request("POST", "/api/v1/auth/login/", { username, password });
  const me = await request("GET", "/api/v1/users/me", undefined, pair.access);
  store({ access: pair.access, refresh: pair.refresh, user: { id: me.id, username: me.username } });
  return me;
}

export async function register(username, email, password, password2) {
  await request("POST", "/api/v1/auth/register/", { username, email, password, password2 });
  return login(username, password);
}

/** Ends this session (`all`: every session of the user, on every door). */
export async function logout(all) {
  const session = storedSession();
  try {
    if (all) await call("POST", "/api/v1/auth/logout-all/");
    else if (session) await request("POST", "/api/v1/auth/logout/", { refresh: session.refresh });
  } finally {
    store(null);
  }
}

export function setStoredUser(user) {
  const session = storedSession();
  if (session) store({ ...session, user: { id: user.id, username: user.username } });
}

export const api = {
  chats: () => call("GET", "/api/v1/chats?limit=500"),
  history: (chatId, before, limit = 50) =>
    call("GET", `/api/v1/chats/${chatId}/messages?limit=${limit}${before ? `&before=${before}` : ""}`),
  searchUsers: (q) => call("GET", `/api/v1/users?search=${encodeURIComponent(q)}&limit=10`),
  publicGroups: (q) => call("GET", `/api/v1/chats/groups?limit=50&search=${encodeURIComponent(q)}`),
  openDirect: (userId) => call("POST", "/api/v1/chats/direct", { user_id: userId }),
  createGroup: (title, name, isPrivate) =>
    call("POST", "/api/v1/chats/groups", { title, ...(name ? { name } : {}), is_private: isPrivate }),
  join: (chatId) => call("POST", `/api/v1/chats/${chatId}/join`),
  leave: (chatId) => call("POST", `/api/v1/chats/${chatId}/leave`),
  members: (chatId) => call("GET", `/api/v1/chats/${chatId}/members`),
  invite: (chatId, userId) => call("POST", `/api/v1/chats/${chatId}/members`, { user_id: userId }),
  remove: (chatId, userId) => call("DELETE", `/api/v1/chats/${chatId}/members/${userId}`),
  setRole: (chatId, userId, role) => call("PATCH", `/api/v1/chats/${chatId}/members/${userId}`, { role }),
  edit: (chatId, seq, text) => call("PATCH", `/api/v1/chats/${chatId}/messages/${seq}`, { text }),
  remove_message: (chatId, seq) => call("DELETE", `/api/v1/chats/${chatId}/messages/${seq}`),
  renameChat: (chatId, title) => call("PATCH", `/api/v1/chats/${chatId}`, { title }),
  rename: (username) => call("PATCH", "/api/v1/users/me", { username }),
};
