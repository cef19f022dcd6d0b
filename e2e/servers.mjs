// Server instances for the browser test and the benchmark: chat-server processes started with
// the environment this process has (scripts/e2e.sh, scripts/e2e-bench.sh set DATABASE_URL,
// REDIS_URL and CHAT_*), one per port, logs to `${logDir}/server-${name}.log`.

import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** The instances started so far, by name: `{child, port, url}`. */
export const servers = {};

/** Starts `bin serve` on 127.0.0.1:`port`; resolves when its /readyz answers 200 (≤ 60 s). */
export function startServer(bin, logDir, name, port) {
  const log = createWriteStream(`${logDir}/server-${name}.log`, { flags: "a" });
  const child = spawn(bin, ["serve"], {
    env: { ...process.env, CHAT_LISTEN: `127.0.0.1:${port}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  servers[name] = { child, port, url: `http://127.0.0.1:${port}` };
  return waitReady(servers[name].url, child);
}

async function waitReady(url, child) {
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null) throw new Error(`server at ${url} exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    await sleep(250);
  }
  throw new Error(`server at ${url} not ready in 60 s`);
}

/** kill -9 of instance `name`; resolves once it has exited. */
export function killServer(name) {
  const s = servers[name];
  s.child.kill("SIGKILL");
  return new Promise((resolve) => s.child.once("exit", resolve));
}

/** SIGTERM to every instance still running. */
export function stopAll() {
  for (const s of Object.values(servers)) if (s.child.exitCode === null) s.child.kill("SIGTERM");
}
