// The web client's performance (make e2e-bench; figures in BENCHMARKS.md, "Web client").
//
// Against one release instance on a fresh database (scripts/e2e-bench.sh): a user with 500
// chats (499 groups with 3 unread lines each and one chat of 100,000 messages, seeded by SQL
// after the chats were made through the API), in Debian's chromium:
// 1. the chat list's first render: the page's own `chat-list-rendered` mark (ms after the
//    navigation started), over 5 reloads;
// 2. the 100,000-message chat opened at its newest page, then scrolled back page by page
//    (E2E_BENCH_PAGES pages of 50): ms per page, and every long task (> 50 ms of main-thread
//    work, the browser's PerformanceObserver "longtask") from the click on the chat to the end;
//    with E2E_TRACE=open or E2E_TRACE=scroll, a Chrome trace of that phase in target/e2e-bench/;
// 3. the client's code sent to the browser: each file's gzip size as served.
// Prints the figures and writes them to target/e2e-bench.json.

import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import puppeteer from "puppeteer-core";
import { startServer, stopAll } from "./servers.mjs";

const root = new URL("..", import.meta.url).pathname;
const out = `${root}target/e2e-bench`;
mkdirSync(out, { recursive: true });
const BIN = process.env.E2E_SERVER_BIN || `${root}target/release/chat-server`;
const PORT = Number(process.env.E2E_PORT || 18290);
const PAGES = Number(process.env.E2E_BENCH_PAGES || 40);
const CHATS = 500;
const BIG = 100000;
const url = `http://127.0.0.1:${PORT}`;

async function post(path, body, token) {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function user(username) {
  const password = "correct-horse-42";
  await post("/api/v1/auth/register/", { username, email: `${username}@example.com`, password, password2: password });
  const pair = await post("/api/v1/auth/login/", { username, password });
  const me = await (await fetch(`${url}/api/v1/users/me`, { headers: { Authorization: `Bearer ${pair.access}` } })).json();
  return { ...pair, id: me.id, username };
}

const sql = (query) => execFileSync("psql", [process.env.DATABASE_URL, "-qAtc", query], { encoding: "utf8" });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x) => Math.round(x * 10) / 10;

async function seed() {
  const me = await user("bench");
  const peer = await user("peer");
  const t0 = Date.now();
  const ids = [];
  const big = await post("/api/v1/chats/groups", { title: "100k messages" }, me.access);
  for (let i = 0; i < CHATS - 1; i += 10) {
    const batch = [];
    for (let j = i; j < Math.min(i + 10, CHATS - 1); j++) {
      batch.push(post("/api/v1/chats/groups", { title: `Group ${String(j + 1).padStart(3, "0")}` }, me.access));
    }
    for (const c of await Promise.all(batch)) ids.push(c.id);
  }
  // Three lines from the peer in every small group (unread for the user), 100,000 in the big
  // one (every other line the user's own), oldest first, a second apart.
  sql(`INSERT INTO messages (chat_id, seq, author_id, kind, text, created_at)
       SELECT c, s, ${peer.id}, 'text', 'line ' || s || ' of group ' || c, now() - (4 - s) * interval '1 minute'
       FROM unnest(ARRAY[${ids.join(",")}]::bigint[]) c, generate_series(1, 3) s;
       UPDATE chats SET last_seq = 3, last_message_at = now() - interval '1 minute' WHERE id = ANY(ARRAY[${ids.join(",")}]::bigint[]);
       INSERT INTO messages (chat_id, seq, author_id, kind, text, created_at)
       SELECT ${big.id}, s, CASE WHEN s % 2 = 0 THEN ${me.id} ELSE ${peer.id} END, 'text',
              'message ' || s || ': the quick brown fox jumps over the lazy dog', now() - (${BIG} - s) * interval '1 second'
       FROM generate_series(1, ${BIG}) s;
       UPDATE chats SET last_seq = ${BIG}, last_message_at = now() WHERE id = ${big.id};
       ANALYZE messages;`);
  console.log(`seeded ${ids.length + 1} chats and ${ids.length * 3 + BIG} messages in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { me, bigId: big.id };
}

async function listRender(page, me) {
  await page.goto(url);
  await page.evaluate((s) => localStorage.setItem("chat.session", JSON.stringify(s)),
    { access: me.access, refresh: me.refresh, user: { id: me.id, username: me.username } });
  const runs = [];
  for (let i = 0; i < 5; i++) {
    await page.reload();
    await page.waitForFunction(() => performance.getEntriesByName("chat-list-rendered").length, { timeout: 30000 });
    const { at, items } = await page.evaluate(() => ({
      at: performance.getEntriesByName("chat-list-rendered")[0].startTime,
      items: document.querySelectorAll("#chat-list li").length,
    }));
    if (items !== CHATS) throw new Error(`${items} chats on screen, not ${CHATS}`);
    runs.push(at);
  }
  return { runs_ms: runs.map(round), median_ms: round(median(runs)), max_ms: round(Math.max(...runs)) };
}

async function scrollBack(page, bigId) {
  await page.waitForSelector("#banner[hidden]");
  await page.evaluate(() => { window.__longSince = performance.now(); });
  if (process.env.E2E_TRACE === "open") await page.tracing.start({ path: `${out}/open-trace.json`, categories: ["devtools.timeline", "disabled-by-default-devtools.timeline"] });
  const t0 = Date.now();
  await page.click(`#chat-list li[data-chat-id="${bigId}"] button`);
  await page.waitForFunction(() => document.querySelectorAll("#messages li[data-seq]").length >= 50, { timeout: 30000 });
  const openMs = Date.now() - t0;
  if (process.env.E2E_TRACE === "open") {
    await sleep(1000);
    await page.tracing.stop();
  }
  const newest = await page.$eval("#messages li[data-seq]:last-child", (li) => Number(li.dataset.seq));
  if (newest !== BIG) throw new Error(`opened at seq ${newest}, not the newest ${BIG}`);
  await sleep(500);
  await page.evaluate(() => { window.__scrollSince = performance.now(); });
  if (process.env.E2E_TRACE === "scroll") await page.tracing.start({ path: `${out}/scroll-trace.json`, categories: ["devtools.timeline", "disabled-by-default-devtools.timeline"] });
  const perPage = [];
  const oldest = () => page.$eval("#messages li[data-seq]", (li) => Number(li.dataset.seq));
  for (let p = 0; p < PAGES; p++) {
    const before = await oldest();
    const t = Date.now();
    await page.evaluate(() => { document.getElementById("scroller").scrollTop = 0; });
    await page.waitForFunction((n) => Number(document.querySelector("#messages li[data-seq]").dataset.seq) <= n - 50, { timeout: 30000 }, before);
    perPage.push(Date.now() - t);
    await sleep(50); // a person's scroll is not instant either; lets the observer report
  }
  if (process.env.E2E_TRACE === "scroll") await page.tracing.stop();
  const reached = await oldest();
  // And down again: the lines dropped from the page come back from memory, up to the newest.
  for (let i = 0; i < 4 * PAGES; i++) {
    const last = await page.$eval("#messages li[data-seq]:last-child", (li) => Number(li.dataset.seq));
    if (last === BIG) break;
    await page.evaluate(() => { const s = document.getElementById("scroller"); s.scrollTop = s.scrollHeight; });
    await page.waitForFunction((n) => Number(document.querySelector("#messages li[data-seq]:last-child").dataset.seq) > n, { timeout: 30000 }, last);
  }
  const result = await page.evaluate(() => {
    const seqs = [...document.querySelectorAll("#messages li[data-seq]")].map((li) => Number(li.dataset.seq));
    const inOrder = seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1);
    const since = (t) => window.__long.filter((e) => e.startTime >= t).map((e) => e.duration);
    const long = since(window.__longSince);
    const scrolling = since(window.__scrollSince);
    return { onScreen: seqs.length, oldest: seqs[0], inOrder, long, scrolling };
  });
  if (!result.inOrder) throw new Error("messages on screen are not contiguous by seq");
  return {
    open_ms: openMs,
    pages: PAGES,
    lines_in_page: result.onScreen,
    oldest_seq_reached: reached,
    newest_seq_after_scrolling_down: BIG,
    page_ms_median: median(perPage),
    page_ms_max: Math.max(...perPage),
    long_tasks: result.long.length,
    longest_task_ms: result.long.length ? round(Math.max(...result.long)) : 0,
    long_tasks_while_scrolling: result.scrolling.length,
    long_task_ms: result.long.map(round),
  };
}

function codeSize(page) {
  return page.evaluate(() => [...document.querySelectorAll("script[src], link[href]")].map((e) => e.src || e.href))
    .then((urls) => {
      const base = urls[0].replace(/[^/]+$/, "");
      const files = readdirSync(`${root}crates/api/web`).filter((f) => f !== "index.html");
      const sizes = {};
      for (const f of ["/", ...files.map((f) => `${base}${f}`)]) {
        const target = f === "/" ? `${url}/` : f;
        const bytes = Number(execFileSync("curl", ["-s", "-o", "/dev/null", "-H", "Accept-Encoding: gzip", "-w", "%{size_download}", target], { encoding: "utf8" }));
        sizes[f === "/" ? "index.html" : f.slice(base.length)] = bytes;
      }
      const total = Object.values(sizes).reduce((a, b) => a + b, 0);
      return { gzip_bytes: sizes, total_bytes: total, total_kib: round(total / 1024) };
    });
}

let failed = false;
try {
  await startServer(BIN, out, "bench", PORT);
  const { me, bigId } = await seed();
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 720 });
    await page.evaluateOnNewDocument(() => {
      window.__long = [];
      new PerformanceObserver((list) => window.__long.push(...list.getEntries().map((e) => ({ startTime: e.startTime, duration: e.duration }))))
        .observe({ type: "longtask", buffered: true });
    });
    const figures = { cpu: process.env.E2E_CPU || "unknown", at: new Date().toISOString() };
    figures.chat_list_first_render = await listRender(page, me);
    console.log(`chat list of ${CHATS} chats, first render: median ${figures.chat_list_first_render.median_ms} ms, max ${figures.chat_list_first_render.max_ms} ms (5 reloads)`);
    figures.scroll_back = await scrollBack(page, bigId);
    const s = figures.scroll_back;
    console.log(`chat of ${BIG} messages: opened at the newest page in ${s.open_ms} ms; ${s.pages} pages back (${s.lines_in_page} lines in the page, back to seq ${s.oldest_seq_reached}, then down to ${BIG} again): median ${s.page_ms_median} ms, max ${s.page_ms_max} ms a page; long tasks: ${s.long_tasks} (${s.long_tasks_while_scrolling} while scrolling), longest ${s.longest_task_ms} ms`);
    figures.code = await codeSize(page);
    console.log(`client code, gzip as served: ${figures.code.total_kib} KiB (${JSON.stringify(figures.code.gzip_bytes)})`);
    writeFileSync(`${root}target/e2e-bench.json`, `${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    await browser.close();
  }
} catch (err) {
  failed = true;
  console.log(`e2e-bench failed: ${err.stack || err.message}`);
} finally {
  stopAll();
}
process.exit(failed ? 1 : 0);
