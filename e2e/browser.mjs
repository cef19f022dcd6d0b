// The web client in a real browser (make e2e; scripts/e2e.sh prepares the database and env).
//
// Debian's chromium driven by puppeteer-core (never a browser download), two server instances
// started here on one database and Redis prefix, two browser contexts as two users on different
// instances (alice on A, bob on B; bob has two tabs). Steps, in order, each stopping the run when
// it fails: register, direct chat live across instances with unread badges, typing, presence,
// Shift+Enter, edit, delete, a group created / browsed / joined, members and roles, an
// over-long message refused with the server's reason, instance A killed and restarted mid-chat
// (nothing lost or twice on screen, sends made while offline go out once), unread cleared on
// every tab, silent token refresh, a session that cannot be refreshed, 375 px and dark mode,
// log out everywhere. Screenshots of every step go to target/e2e/ (E2E_DOCS_SCREENSHOT=1 also
// writes docs/web-client.png). Ends with "e2e: N passed, N failed"; exit code 1 on a failure.
//
// Env (not CHAT_*: the server refuses CHAT_ variables it does not know): E2E_SERVER_BIN (the binary),
// E2E_PORT (instance A; B is +1), CHROMIUM (browser path), E2E_TRACE=1 (print each wait),
// plus the server's own DATABASE_URL, REDIS_URL, CHAT_* as scripts/e2e.sh sets them.

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import puppeteer from "puppeteer-core";
import { killServer, servers, startServer as start, stopAll } from "./servers.mjs";

const root = new URL("..", import.meta.url).pathname;
const out = `${root}target/e2e`;
mkdirSync(out, { recursive: true });
const BIN = process.env.E2E_SERVER_BIN || `${root}target/debug/chat-server`;
const PORT = Number(process.env.E2E_PORT || 18280);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15000;

const startServer = (name, port) => start(BIN, out, name, port);

// ------------------------------------------------------------------ steps

let passed = 0;
let failed = 0;
let shot = 0;
const pages = {};

async function screenshot(label) {
  shot += 1;
  const n = String(shot).padStart(2, "0");
  for (const [who, page] of Object.entries(pages)) {
    if (page.isClosed()) continue;
    // A background tab paints nothing (a screenshot of it waits for a frame that never comes).
    const hidden = await page.evaluate(() => document.visibilityState === "hidden").catch(() => true);
    if (!hidden) await page.screenshot({ path: `${out}/${n}-${label}-${who}.png` }).catch(() => {});
  }
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    await screenshot(name.replace(/[^a-z0-9]+/gi, "-").toLowerCase().slice(0, 40));
  } catch (err) {
    failed += 1;
    console.log(`FAIL ${name} (${Date.now() - t0} ms): ${err.message}`);
    for (const [who, page] of Object.entries(pages)) {
      const alive = await Promise.race([page.evaluate(() => true).catch(() => false), sleep(3000).then(() => false)]);
      if (!alive) console.log(`     ${who}'s page does not answer (a script runs without end?)`);
    }
    await screenshot("failed");
    throw err;
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Waits until `fn(...args)` is truthy in the page; the error names what was awaited. */
async function until(page, what, fn, ...args) {
  if (process.env.E2E_TRACE) console.log(`     waiting: ${what}`);
  try {
    return await page.waitForFunction(fn, { timeout: WAIT, polling: 50 }, ...args);
  } catch (err) {
    throw new Error(`${what}: ${err.message.split("\n")[0]}`);
  }
}

const psql = (query) => execFileSync("psql", [process.env.DATABASE_URL, "-qAtc", query], { encoding: "utf8" }).trim();
const text = (page, sel) => page.$eval(sel, (e) => e.textContent);

/** Texts of the stored messages on screen, with their seqs, in screen order. */
const screenMessages = (page) =>
  page.$$eval("#messages li[data-seq]", (lis) =>
    lis.map((li) => ({ seq: Number(li.dataset.seq), text: li.querySelector(".body")?.textContent ?? li.textContent })));

async function typeAndSend(page, message) {
  await page.focus("#text");
  await page.keyboard.type(message);
  await page.keyboard.press("Enter");
}

async function waitMessage(page, who, message) {
  await until(page, `${who} sees "${message}"`, (m) =>
    [...document.querySelectorAll("#messages li[data-seq] .body")].some((b) => b.textContent === m), message);
}

async function register(page, url, username) {
  await page.goto(url);
  await page.waitForSelector("#login:not([hidden])");
  await page.click("#tab-register");
  await page.type("input[name=username]", username);
  await page.type("input[name=email]", `${username}@example.com`);
  await page.type("input[name=password]", "correct-horse-42");
  await page.type("input[name=password2]", "correct-horse-42");
  await page.click("#login-submit");
  await until(page, `${username} sees the app`, () => !document.getElementById("app").hidden);
  await until(page, `${username} is online`, () => document.getElementById("banner").hidden);
  assert((await text(page, "#me")) === username, "the account button names the user");
}

async function openChatNamed(page, name) {
  const sel = `#chat-list li button[aria-label^="${name}"]`;
  await page.waitForSelector(sel, { timeout: WAIT });
  await page.click(sel);
  await until(page, `chat "${name}" open`, (n) => document.getElementById("chat-title").textContent === n, name);
}

// ------------------------------------------------------------------ the run

async function main() {
  await startServer("A", PORT);
  await startServer("B", PORT + 1); // after A: A has migrated the database
  const A = servers.A.url;
  const B = servers.B.url;

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    protocolTimeout: 30000,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    const ctxA = await browser.createBrowserContext();
    const ctxB = await browser.createBrowserContext();
    const alice = (pages.alice = await ctxA.newPage());
    const bob = (pages.bob = await ctxB.newPage());
    for (const p of [alice, bob]) {
      await p.setViewport({ width: 1100, height: 720 });
      p.on("dialog", (d) => d.accept());
      p.on("pageerror", (err) => console.log(`page error: ${err.message}`));
    }
    const cspViolations = [];
    for (const p of [alice, bob]) {
      p.on("console", (m) => {
        if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
      });
    }

    await step("register alice on A and bob on B", async () => {
      await register(alice, A, "alice");
      await register(bob, B, "bob");
      assert(!(await alice.$eval("#no-chats", (e) => e.hidden)), "an empty list says how to start");
    });

    await step("direct chat: live across instances, unread badge, read clears it", async () => {
      await alice.click("#new-direct");
      await alice.type("#dialog-body input", "bo");
      await alice.waitForSelector('button[aria-label="Chat with bob"]', { timeout: WAIT });
      await alice.click('button[aria-label="Chat with bob"]');
      await until(alice, "the direct chat opens", () => document.getElementById("chat-title").textContent === "bob");
      await typeAndSend(alice, "hello bob");
      await until(alice, "alice's message is acknowledged", () =>
        [...document.querySelectorAll("#messages li.mine[data-seq] .body")].some((b) => b.textContent === "hello bob")
        && !document.querySelector("#pending li"));
      await until(bob, "bob's list shows the chat with 1 unread", () =>
        document.querySelector('#chat-list li button[aria-label="alice, 1 unread"] .badge')?.textContent === "1");
      const preview = await text(bob, "#chat-list li .preview");
      assert(preview === "alice: hello bob", `preview is "${preview}"`);
      await openChatNamed(bob, "alice");
      await waitMessage(bob, "bob", "hello bob");
      await until(bob, "the badge clears once read", () => !document.querySelector("#chat-list .badge"));
    });

    await step("typing indicator and presence", async () => {
      await until(alice, "alice sees bob online", () => document.getElementById("chat-sub").textContent === "online");
      await bob.focus("#text");
      await bob.keyboard.type("hi ali");
      await until(alice, "alice sees bob typing", () => document.getElementById("typing").textContent === "bob is typing…");
      await bob.keyboard.type("ce");
      await bob.keyboard.press("Enter");
      await waitMessage(alice, "alice", "hi alice");
      await until(alice, "typing clears when bob's message arrives", () => document.getElementById("typing").textContent === "");
    });

    await step("Shift+Enter makes a new line, Enter sends", async () => {
      await alice.focus("#text");
      await alice.keyboard.type("line one");
      await alice.keyboard.down("Shift");
      await alice.keyboard.press("Enter");
      await alice.keyboard.up("Shift");
      await alice.keyboard.type("line two");
      await alice.keyboard.press("Enter");
      await waitMessage(bob, "bob", "line one\nline two");
    });

    await step("edit and delete own messages, seen live by the other side", async () => {
      const editSel = "#messages li.mine:last-of-type button.edit";
      await alice.click(editSel);
      assert((await alice.$eval("#text", (t) => t.value)) === "line one\nline two", "the composer holds the text");
      assert(!(await alice.$eval("#editing", (e) => e.hidden)), "the composer says it is editing");
      await alice.$eval("#text", (t) => { t.value = ""; });
      await alice.keyboard.type("line one, edited");
      await alice.keyboard.press("Enter");
      await waitMessage(bob, "bob", "line one, edited");
      await until(bob, "bob sees it marked edited", () =>
        [...document.querySelectorAll("#messages li[data-seq]")].some((li) =>
          li.querySelector(".body").textContent === "line one, edited" && li.querySelector(".meta").textContent.includes("edited")));
      const before = (await screenMessages(bob)).length;
      await alice.click("#messages li.mine:last-of-type button.delete"); // confirm() is accepted
      await until(bob, "bob sees it deleted", () =>
        [...document.querySelectorAll("#messages li.deleted .body")].some((b) => b.textContent === "message deleted"));
      await until(alice, "alice sees it deleted", () => document.querySelector("#messages li.mine:last-of-type").classList.contains("deleted"));
      assert((await screenMessages(bob)).length === before, "a delete keeps the line's place");
      // Only the author may edit: bob's copy of alice's lines has no edit button.
      assert(!(await bob.$('#messages li:not(.mine) button.edit')), "no edit button on others' messages");
    });

    await step("group: created by alice, found and joined by bob, chat live", async () => {
      await alice.click("#new-group");
      await alice.type('#dialog-body input[name="title"]', "Team e2e");
      await alice.type('#dialog-body input[name="name"]', "team-e2e");
      await alice.click("#dialog-ok");
      await until(alice, "the group opens", () => document.getElementById("chat-title").textContent === "Team e2e");
      await until(alice, "a new group says it is empty", () =>
        document.getElementById("history-state").textContent === "Beginning of the chat"
        && document.querySelector("#chat-list li .preview").textContent === "No messages yet");
      await bob.click("#browse");
      await bob.type("#dialog-body input", "Team");
      await bob.waitForSelector('button[aria-label="Join Team e2e"]', { timeout: WAIT });
      await bob.click('button[aria-label="Join Team e2e"]');
      await until(bob, "bob is in the group", () => document.getElementById("chat-title").textContent === "Team e2e");
      await until(alice, "alice sees the join as a system line", () =>
        document.querySelector("#messages li.system")?.textContent === "bob joined the group");
      await typeAndSend(bob, "bob joined and says hi");
      await waitMessage(alice, "alice", "bob joined and says hi");
      await typeAndSend(alice, "welcome bob");
      await waitMessage(bob, "bob", "welcome bob");
      const order = await alice.$$eval("#chat-list li .name", (n) => n.map((x) => x.textContent));
      assert(order[0].startsWith("Team e2e"), `the newest activity comes first: ${order.join(", ")}`);
      await until(alice, "the header counts 2 online", () => /2 online/.test(document.getElementById("chat-sub").textContent));
    });

    await step("members: the owner sees both and promotes bob to admin", async () => {
      await alice.click("#members-button");
      await until(alice, "both members listed", () => document.querySelectorAll("#member-list li").length === 2);
      const bobRow = await alice.$$eval("#member-list li", (lis) =>
        lis.map((li) => li.textContent).find((t) => t.includes("bob")));
      assert(/member/.test(bobRow), `bob's row: ${bobRow}`);
      const button = await alice.waitForSelector("#member-list li ::-p-text(Make admin)", { timeout: WAIT });
      await button.click();
      await until(alice, "bob is admin", () =>
        [...document.querySelectorAll("#member-list li")].some((li) => li.textContent.includes("bob") && li.querySelector(".role").textContent === "admin"));
      await alice.click("#close-members");
    });

    await step("an over-long message shows the server's refusal and is not sent", async () => {
      await alice.$eval("#text", (t) => { t.value = "x".repeat(4097); });
      await alice.focus("#text");
      await alice.keyboard.press("Enter");
      await until(alice, "the send is marked failed", () => document.querySelector("#pending li.failed .reason"));
      const reason = await text(alice, "#pending li.failed .reason");
      assert(/4096|long/i.test(reason), `the reason names the limit: "${reason}"`);
      await alice.click("#pending li.failed ::-p-text(Discard)");
      await until(alice, "discarded", () => !document.querySelector("#pending li"));
      await sleep(300);
      assert(!(await screenMessages(bob)).some((m) => m.text.startsWith("xxxx")), "bob never got it");
    });

    await step("instance A killed and restarted mid-chat: nothing lost or twice on screen", async () => {
      const sent = { alice: [], bob: [] };
      for (let i = 1; i <= 3; i++) {
        sent.bob.push(`b${i}`);
        await typeAndSend(bob, `b${i}`);
      }
      await waitMessage(alice, "alice", "b3");
      await killServer("A");
      await until(alice, "alice sees the offline banner", () => !document.getElementById("banner").hidden);
      for (let i = 1; i <= 3; i++) {
        sent.alice.push(`a${i}`);
        await typeAndSend(alice, `a${i}`);
      }
      for (let i = 4; i <= 6; i++) {
        sent.bob.push(`b${i}`);
        await typeAndSend(bob, `b${i}`);
      }
      assert((await alice.$$("#pending li")).length === 3, "alice's offline sends wait as pending");
      await sleep(1000);
      await startServer("A", PORT);
      await until(alice, "alice is back online", () => document.getElementById("banner").hidden);
      for (let i = 7; i <= 8; i++) {
        sent.bob.push(`b${i}`);
        await typeAndSend(bob, `b${i}`);
      }
      await waitMessage(alice, "alice", "b8");
      await waitMessage(bob, "bob", "a3");
      await until(alice, "no pending send left", () => !document.querySelector("#pending li"));
      await sleep(500); // a late duplicate would show up here
      for (const [who, page] of [["alice", alice], ["bob", bob]]) {
        const msgs = await screenMessages(page);
        const seqs = msgs.map((m) => m.seq);
        for (let i = 1; i < seqs.length; i++) {
          assert(seqs[i] === seqs[i - 1] + 1, `${who}: seqs on screen in order without gaps: ${seqs.join(",")}`);
        }
        for (const t of [...sent.alice, ...sent.bob]) {
          const n = msgs.filter((m) => m.text === t).length;
          assert(n === 1, `${who} sees "${t}" ${n} times`);
        }
      }
      const aliceOrder = (await screenMessages(alice)).map((m) => m.text).filter((t) => /^a\d$/.test(t));
      assert(aliceOrder.join() === "a1,a2,a3", `alice's offline sends keep their order: ${aliceOrder}`);
    });

    await step("read in one tab clears the badge in the user's other tab", async () => {
      const bob2 = (pages.bob2 = await ctxB.newPage());
      await bob2.setViewport({ width: 1100, height: 720 });
      bob2.on("pageerror", (err) => console.log(`page error: ${err.message}`));
      await bob2.goto(B);
      await until(bob2, "the second tab is logged in from the shared session", () => !document.getElementById("app").hidden);
      // A background tab runs no animation frames (puppeteer's clicks wait for them, and the
      // list renders in one): each tab is brought to the front before it is used or looked at,
      // as a person switching tabs does.
      await bob.bringToFront();
      await openChatNamed(bob, "alice"); // away from the group
      await typeAndSend(alice, "are you there?");
      await bob2.bringToFront();
      await until(bob2, "the second tab shows 1 unread", () =>
        document.querySelector('#chat-list li button[aria-label="Team e2e, 1 unread"]'));
      await bob.bringToFront();
      await openChatNamed(bob, "Team e2e");
      await waitMessage(bob, "bob", "are you there?");
      await until(bob, "read here", () => !document.querySelector("#chat-list .badge"));
      await sleep(300);
      await bob2.bringToFront();
      await until(bob2, "the second tab's badge clears", () => !document.querySelector("#chat-list .badge"));
    });

    await step("an expired access token is refreshed silently", async () => {
      await bob2Refresh(pages.bob2);
    });

    await step("375 px wide and dark mode", async () => {
      const phone = pages.bob2;
      await phone.setViewport({ width: 375, height: 740 });
      await phone.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
      await openChatNamed(phone, "Team e2e");
      const layout = await phone.evaluate(() => ({
        overflow: document.documentElement.scrollWidth,
        listVisible: getComputedStyle(document.getElementById("sidebar")).display !== "none",
        composer: document.getElementById("composer").getBoundingClientRect().width,
        bg: getComputedStyle(document.body).backgroundColor,
      }));
      assert(layout.overflow <= 375, `no horizontal scrolling at 375 px (${layout.overflow})`);
      assert(!layout.listVisible, "on a phone the open chat takes the screen");
      assert(layout.composer > 300, `the composer uses the width (${layout.composer})`);
      const light = await alice.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert(layout.bg !== light, `dark mode changes the background (${layout.bg} vs ${light})`);
      await phone.click("#back");
      assert(await phone.$eval("#sidebar", (e) => getComputedStyle(e).display !== "none"), "back shows the list");
    });

    await step("a session that cannot be refreshed returns to the login screen with the reason", async () => {
      // Its own user in its own context: the broken session would end bob's tabs too (they share it).
      await pages.bob2.close();
      delete pages.bob2;
      const carol = (pages.carol = await (await browser.createBrowserContext()).newPage());
      await carol.setViewport({ width: 1100, height: 720 });
      await register(carol, B, "carol");
      await carol.evaluate(() => {
        const s = JSON.parse(localStorage.getItem("chat.session"));
        localStorage.setItem("chat.session", JSON.stringify({ ...s, access: "x.y.z", refresh: "not-a-refresh-token" }));
      });
      await carol.reload();
      await until(carol, "the login screen returns", () => !document.getElementById("login").hidden);
      const reason = await text(carol, "#login-error");
      assert(/session ended/i.test(reason), `the reason is shown: "${reason}"`);
      assert((await text(carol, "#login-submit")) === "Log in", "the login form, not registration, comes back");
      await carol.close();
      delete pages.carol;
    });

    await step("a send over the rate limit shows the server's reason with the wait", async () => {
      // The servers run with CHAT_RATE_SEND_PER_MIN=30 (scripts/e2e.sh), a fixed window per
      // minute: at most 61 sends cross it even when a minute turns over during the burst.
      const dave = (pages.dave = await (await browser.createBrowserContext()).newPage());
      await dave.setViewport({ width: 1100, height: 720 });
      await register(dave, A, "dave");
      await dave.click("#new-group");
      await dave.type('#dialog-body input[name="title"]', "Flood");
      await dave.click("#dialog-ok");
      await until(dave, "the group opens", () => document.getElementById("chat-title").textContent === "Flood");
      for (let i = 1; i <= 61 && !(await dave.$("#pending li.failed")); i++) await typeAndSend(dave, `f${i}`);
      await until(dave, "a send is refused", () => document.querySelector("#pending li.failed .reason"));
      const reason = await text(dave, "#pending li.failed .reason");
      assert(/wait \d+ s/.test(reason), `the reason gives the wait: "${reason}"`);
      await dave.close();
      delete pages.dave;
    });

    await step("the owner renames the group; bob sees the new title and the system line", async () => {
      await alice.bringToFront();
      await openChatNamed(alice, "Team e2e");
      await alice.click("#rename-chat");
      const input = await alice.waitForSelector('#dialog-body input[name="title"]');
      await input.click({ clickCount: 3 });
      await alice.keyboard.type("Core team");
      await alice.keyboard.press("Enter");
      await until(alice, "alice's header shows the new title", () => document.getElementById("chat-title").textContent === "Core team");
      await bob.bringToFront();
      await until(bob, "bob's header and list show the new title", () =>
        document.getElementById("chat-title").textContent === "Core team"
        && document.querySelector('#chat-list li button[aria-label^="Core team"]'));
      await until(bob, "bob sees the system line", () =>
        [...document.querySelectorAll("#messages li.system")].some((li) => li.textContent === "alice renamed the group to “Core team”"));
      assert(!(await bob.$eval("#rename-chat", (b) => b.hidden)), "bob, an admin now, is offered Rename too");
      if (process.env.E2E_DOCS_SCREENSHOT) {
        await alice.bringToFront();
        await typeAndSend(bob, "Renamed, nice. Shipping the web client today?");
        await typeAndSend(alice, "Yes, make e2e is green.");
        await waitMessage(bob, "bob", "Yes, make e2e is green.");
        await sleep(300);
        await alice.screenshot({ path: `${root}docs/web-client.png` });
      }
    });

    await step("a long chat scrolls back to its first line and down again, a window of lines at a time", async () => {
      await bob.bringToFront();
      const chatId = await bob.$eval('#chat-list li button[aria-label^="Core team"]', (b) => Number(b.parentElement.dataset.chatId));
      const last = Number(psql(`SELECT last_seq FROM chats WHERE id = ${chatId}`));
      psql(`INSERT INTO messages (chat_id, seq, author_id, kind, text)
            SELECT ${chatId}, ${last} + s, (SELECT owner_id FROM chats WHERE id = ${chatId}), 'text', 'filler ' || s
            FROM generate_series(1, 700) s;
            UPDATE chats SET last_seq = ${last} + 700, last_message_at = now() WHERE id = ${chatId}`);
      await bob.reload();
      await openChatNamed(bob, "Core team");
      await waitMessage(bob, "bob", "filler 700");
      const check = async (what) => {
        const seqs = (await screenMessages(bob)).map((m) => m.seq);
        assert(seqs.length <= 300, `${what}: ${seqs.length} lines in the page, more than the window of 300`);
        assert(seqs.every((q, i) => i === 0 || q === seqs[i - 1] + 1), `${what}: drawn lines are not one run of seqs`);
        return seqs;
      };
      for (let i = 0; i < 40; i++) {
        const seqs = await check("scrolling up");
        if (seqs[0] === 1) break;
        await bob.evaluate(() => { document.getElementById("scroller").scrollTop = 0; });
        await until(bob, "older lines are drawn", (q) => Number(document.querySelector("#messages li[data-seq]").dataset.seq) < q, seqs[0]);
      }
      await until(bob, "the first line and the beginning of the chat", () =>
        document.querySelector("#messages li[data-seq]").dataset.seq === "1"
        && document.getElementById("history-state").textContent === "Beginning of the chat");
      for (let i = 0; i < 40; i++) {
        const seqs = await check("scrolling down");
        if (seqs[seqs.length - 1] === last + 700) break;
        await bob.evaluate(() => { const s = document.getElementById("scroller"); s.scrollTop = s.scrollHeight; });
        await until(bob, "newer lines are drawn", (q) => Number(document.querySelector("#messages li[data-seq]:last-child").dataset.seq) > q, seqs[seqs.length - 1]);
      }
      await typeAndSend(alice, "after the long scroll");
      await waitMessage(bob, "bob", "after the long scroll");
      await check("at the newest line");
    });

    await step("log out everywhere ends alice's sessions", async () => {
      const token = await alice.evaluate(() => JSON.parse(localStorage.getItem("chat.session")).access);
      await alice.click("#me");
      await alice.click("#logout-all");
      await until(alice, "the login screen returns", () => !document.getElementById("login").hidden);
      assert((await text(alice, "#login-error")) === "Logged out everywhere.", "the reason is shown");
      const res = await fetch(`${A}/api/v1/chats`, { headers: { Authorization: `Bearer ${token}` } });
      assert(res.status === 401, `the old access token is refused (${res.status})`);
      await alice.reload();
      await until(alice, "still logged out after a reload", () => !document.getElementById("login").hidden);
      await bob.bringToFront();
      await until(bob, "bob sees alice go offline", () => /1 online/.test(document.getElementById("chat-sub").textContent));
    });

    await step("no Content-Security-Policy violation on any page", async () => {
      assert(cspViolations.length === 0, cspViolations.join("; "));
    });
  } finally {
    await browser.close();
  }
}

/** Replaces the stored access token with an expired-looking one: the next call must refresh. */
async function bob2Refresh(page) {
  const before = await page.evaluate(() => JSON.parse(localStorage.getItem("chat.session")));
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem("chat.session"));
    const [h, , sig] = s.access.split(".");
    const payload = btoa(JSON.stringify({ sub: "0", exp: 1 })).replace(/=+$/, "");
    localStorage.setItem("chat.session", JSON.stringify({ ...s, access: `${h}.${payload}.${sig}` }));
  });
  await page.reload();
  await until(page, "the app loads after a refresh", () => !document.getElementById("app").hidden
    && document.querySelector("#chat-list li"));
  await until(page, "online", () => document.getElementById("banner").hidden);
  const after = await page.evaluate(() => JSON.parse(localStorage.getItem("chat.session")));
  assert(after.refresh !== before.refresh, "the refresh token was rotated");
  assert(after.access !== before.access, "a new access token is stored");
}

const started = Date.now();
try {
  await main();
} catch (err) {
  if (!failed) {
    failed += 1;
    console.log(`FAIL set-up: ${err.stack || err.message}`);
  }
} finally {
  stopAll();
}
console.log(`e2e: ${passed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s; screenshots and server logs in target/e2e/)`);
process.exit(failed ? 1 : 0);
