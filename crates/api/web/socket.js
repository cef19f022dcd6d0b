// The gateway WebSocket (/api/v1/ws): one socket for every chat of the user.
//
// Authenticates with a first `auth` frame (the token stays out of URLs and logs) carrying the
// resume point, `sync: {chat_id: last seq seen}`, so after a reconnect the server replays exactly
// what was missed before any live event. Reconnects with backoff and jitter (state.js
// `backoffMs`); close 1008 (refused: revoked session, bad token) refreshes the token once and
// otherwise ends the session. Frames to the server go through a queue paced under the server's
// per-socket frame rate (CHAT_WS_FRAMES_PER_SEC, 50 by default).

import { accessToken, refresh } from "./api.js";
import { backoffMs } from "./state.js";

const PACE_MS = 40; // at most 25 frames a second
const PING_MS = 25000;

export class Gateway {
  /**
   * `handlers`: `onFrame(frame)`, `onState("connecting"|"online"|"offline")`,
   * `syncPoint()` → `{chat_id: seq}`, `onEnd(reason)` when the session cannot go on.
   */
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.attempt = 0;
    this.queue = [];
    this.timer = null;
    this.ready = false;
    this.stopped = false;
    this.refusals = 0;
    this.nextRequest = 1;
  }

  start() {
    this.stopped = false;
    this.connect();
    window.addEventListener("online", () => this.wake());
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pinger);
    if (this.ws) this.ws.close(1000, "logout");
  }

  /** Reconnects now if waiting (the browser says the network is back). */
  wake() {
    if (!this.stopped && !this.ws) {
      clearTimeout(this.reconnectTimer);
      this.connect();
    }
  }

  async connect() {
    this.h.onState("connecting");
    let token;
    try {
      token = await accessToken();
    } catch (err) {
      if (err.status === 401) return this.h.onEnd(err.message);
      return this.retryLater();
    }
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ action: "auth", token, sync: this.h.syncPoint() }));
    };
    ws.onmessage = (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame.event === "ready") {
        this.ready = true;
        this.attempt = 0;
        this.refusals = 0;
        this.h.onState("online");
        this.pinger = setInterval(() => this.send({ action: "ping" }), PING_MS);
        this.h.onFrame(frame);
        this.pump();
        return;
      }
      this.h.onFrame(frame);
    };
    ws.onclose = (ev) => this.closed(ws, ev);
  }

  async closed(ws, ev) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.ready = false;
    clearInterval(this.pinger);
    if (this.stopped) return;
    this.h.onState("offline", ev.code);
    if (ev.code === 1008) {
      // Refused: an expired access token is refreshed once; anything else ends the session.
      this.refusals += 1;
      if (this.refusals > 2 || /revoked/.test(ev.reason)) {
        return this.h.onEnd(ev.reason || "The server refused the session.");
      }
      try {
        await refresh();
      } catch (err) {
        if (err.status === 401 || err.status === 400) return this.h.onEnd(err.message);
      }
    }
    this.retryLater();
  }

  retryLater() {
    const wait = backoffMs(this.attempt++);
    this.reconnectTimer = setTimeout(() => this.connect(), wait);
  }

  /** Queues a frame; returns its `request_id`. Frames wait while the socket is down. */
  send(frame) {
    const id = this.nextRequest++;
    this.queue.push({ ...frame, request_id: id });
    this.pump();
    return id;
  }

  /** Drops queued frames matching `pred` (e.g. typing while offline is pointless). */
  drop(pred) {
    this.queue = this.queue.filter((f) => !pred(f));
  }

  pump() {
    if (this.timer || !this.ready || !this.queue.length || this.ws.readyState !== WebSocket.OPEN) return;
    const frame = this.queue.shift();
    this.ws.send(JSON.stringify(frame));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, PACE_MS);
  }
}
