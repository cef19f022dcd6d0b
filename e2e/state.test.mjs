// Unit tests of the web client's state rules (crates/api/web/state.js): `node --test` in e2e/
// (make e2e runs them before the browser). state.js has no DOM and no network, so it is
// imported as the browser imports it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatList, Timeline, backoffMs, lowerBound, refusalText, tokenExpiry } from "../crates/api/web/state.js";

const msg = (seq, extra = {}) => ({ seq, text: `m${seq}`, created_at: `2026-12-02T10:00:${String(seq % 60).padStart(2, "0")}Z`, ...extra });

test("lowerBound finds the insertion point by seq", () => {
  const list = [1, 3, 5, 7].map((seq) => ({ seq }));
  assert.equal(lowerBound(list, 0), 0);
  assert.equal(lowerBound(list, 3), 1);
  assert.equal(lowerBound(list, 4), 2);
  assert.equal(lowerBound(list, 8), 4);
  assert.equal(lowerBound([], 1), 0);
});

test("a message seen twice (live and in a replay or a page) is kept once, in seq order", () => {
  const t = new Timeline();
  assert.equal(t.upsert(msg(3)).change, "added");
  assert.equal(t.upsert(msg(1)).change, "added");
  assert.equal(t.upsert(msg(3, { text: "other" })).change, "duplicate");
  const added = t.addPage([msg(1), msg(2), msg(3)], false, false);
  assert.deepEqual(added.map((m) => m.seq), [2]);
  assert.deepEqual(t.messages.map((m) => m.seq), [1, 2, 3]);
  assert.equal(t.messages[2].text, "m3", "the first copy stays");
  assert.equal(t.hasMoreBefore, false);
  assert.equal(t.newestSeq(), 3);
  assert.equal(t.oldestSeq(), 1);
});

test("an edit or a delete replaces the message in place", () => {
  const t = new Timeline();
  t.addPage([msg(1), msg(2)], true, false);
  const r = t.upsert(msg(2, { text: "edited", edited_at: "x" }), true);
  assert.deepEqual(r, { change: "replaced", index: 1 });
  assert.equal(t.messages[1].text, "edited");
  assert.equal(t.messages.length, 2);
});

test("older pages keep has_more from the oldest page; a newest page only sets it once", () => {
  const t = new Timeline();
  t.addPage([msg(51), msg(52)], true, false);
  assert.equal(t.hasMoreBefore, true);
  t.addPage([msg(52), msg(53)], false, false); // a refresh of the newest page says nothing about older ones
  assert.equal(t.hasMoreBefore, true);
  t.addPage([msg(49), msg(50)], false, true);
  assert.equal(t.hasMoreBefore, false);
  assert.deepEqual(t.messages.map((m) => m.seq), [49, 50, 51, 52, 53]);
});

test("an own send is pending until its message comes back, whichever way it comes", () => {
  const t = new Timeline();
  t.addPending("c1", "hello");
  t.addPending("c2", "again");
  assert.equal(t.pending.length, 2);
  // The acknowledgement, or the same message replayed after a reconnect, carries the client_id.
  t.upsert(msg(7, { client_id: "c1", text: "hello" }));
  assert.deepEqual(t.pending.map((p) => p.client_id), ["c2"]);
  // A refusal keeps it, marked failed with the reason, until retried or discarded.
  assert.equal(t.fail("c2", "too long").status, "failed");
  assert.equal(t.pending[0].reason, "too long");
  assert.equal(t.retry("c2").status, "sending");
  assert.equal(t.pending[0].reason, null);
  assert.equal(t.settle("c2"), true);
  assert.equal(t.settle("c2"), false);
  assert.equal(t.settle(undefined), false);
  assert.equal(t.fail("nope", "x"), undefined);
});

const chat = (id, lastSeq, unread, at, extra = {}) => ({
  id, kind: "group", last_seq: lastSeq, unread_count: unread, last_message_at: at, created_at: "2026-01-01T00:00:00Z", ...extra,
});

test("the chat list is ordered by newest activity, ties by newer chat", () => {
  const list = new ChatList(1);
  list.load([
    chat(1, 5, 0, "2026-12-02T10:00:00Z"),
    chat(2, 5, 0, "2026-12-02T11:00:00Z"),
    chat(3, 0, 0, null, { created_at: "2026-12-02T10:30:00Z" }),
    chat(4, 5, 0, "2026-12-02T10:00:00Z"),
  ]);
  assert.deepEqual(list.ordered().map((c) => c.id), [2, 3, 4, 1]);
});

test("unread counts follow live messages and read markers, never below zero, never backwards", () => {
  const list = new ChatList(1);
  list.load([chat(10, 4, 2, "2026-12-02T10:00:00Z")]);
  assert.equal(list.get(10).last_read_seq, 2);
  assert.equal(list.onMessage(10, msg(5, { author: { id: 2 } })), true);
  assert.equal(list.get(10).unread_count, 3);
  assert.equal(list.get(10).last_message.seq, 5);
  // A replayed older message does not move the preview back.
  list.onMessage(10, msg(3, { author: { id: 2 } }));
  assert.equal(list.get(10).last_message.seq, 5);
  // Own lines are never unread: the sender's marker moves with them.
  list.onMessage(10, msg(6, { author: { id: 1 } }));
  assert.equal(list.get(10).unread_count, 0);
  list.onRead(10, 2);
  assert.equal(list.get(10).last_read_seq, 6, "a read marker never moves back");
  assert.equal(list.onMessage(99, msg(1)), false, "an unknown chat asks for a reload");
});

test("an edit changes the preview only when it is the newest message", () => {
  const list = new ChatList(1);
  list.load([chat(1, 2, 0, "2026-12-02T10:00:00Z", { last_message: msg(2) })]);
  list.onMessageChanged(1, msg(1, { text: "old edited" }));
  assert.equal(list.get(1).last_message.text, "m2");
  list.onMessageChanged(1, msg(2, { deleted: true }));
  assert.equal(list.get(1).last_message.deleted, true);
});

test("the resume point is the last seq seen per chat, else the list's last seq", () => {
  const list = new ChatList(1);
  list.load([chat(1, 9, 0, null), chat(2, 4, 0, null)]);
  assert.deepEqual(list.syncPoint(new Map([[1, 7]])), { 1: 7, 2: 4 });
  list.remove(2);
  assert.deepEqual(list.syncPoint(new Map()), { 1: 9 });
});

test("reconnect backoff doubles from 500 ms to 15 s with ±30 % jitter", () => {
  assert.equal(backoffMs(0, () => 0.5), 500);
  assert.equal(backoffMs(1, () => 0.5), 1000);
  assert.equal(backoffMs(4, () => 0.5), 8000);
  assert.equal(backoffMs(5, () => 0.5), 15000);
  assert.equal(backoffMs(50, () => 0.5), 15000);
  assert.equal(backoffMs(0, () => 0), 350);
  assert.equal(backoffMs(0, () => 0.999999), 650);
});

test("a JWT's exp is read without checking it; garbage gives 0", () => {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  assert.equal(tokenExpiry(`${b64({ alg: "HS256" })}.${b64({ exp: 1790000000, sub: "1" })}.sig`), 1790000000);
  assert.equal(tokenExpiry("not a token"), 0);
  assert.equal(tokenExpiry(""), 0);
});

test("a refusal shows the server's reason, with the wait for rate limits", () => {
  assert.equal(refusalText({ code: "rate_limited", detail: "Too many messages.", retry_after: 3 }), "Too many messages. (wait 3 s)");
  assert.equal(refusalText({ code: "validation_error", detail: "Message is too long." }), "Message is too long.");
  assert.equal(refusalText({ code: "forbidden" }), "forbidden");
  assert.equal(refusalText({}), "refused");
});

test("a list reloaded while live messages arrive never moves a chat back", () => {
  const list = new ChatList(1);
  list.load([chat(1, 4, 0, "2026-12-02T10:00:00Z"), chat(2, 2, 1, "2026-12-02T09:00:00Z")]);
  list.onMessage(1, msg(5, { author: { id: 2 } })); // live, after the reload was asked for
  list.onRead(2, 2);
  list.load([chat(1, 4, 0, "2026-12-02T10:00:00Z"), chat(2, 2, 1, "2026-12-02T09:00:00Z"), chat(3, 1, 1, null)]);
  assert.equal(list.get(1).last_seq, 5);
  assert.equal(list.get(1).last_message.seq, 5);
  assert.equal(list.get(1).unread_count, 1);
  assert.equal(list.get(2).unread_count, 0, "the read marker stays");
  assert.equal(list.get(3).unread_count, 1, "a new chat comes in as the server says");
  list.load([chat(1, 9, 3, "2026-12-02T11:00:00Z")]);
  assert.equal(list.get(1).last_seq, 9, "newer server state wins");
  assert.equal(list.get(1).unread_count, 3);
  assert.equal(list.get(2), undefined, "a chat the server no longer lists is gone");
});
