// Starts the real gateway (AVIARY_BIN) on port 0 and reads its `listening` line; can restart
// it on the same ports. Every wait is bounded.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const BIN = process.env.AVIARY_BIN;

// The folders made here (data dirs, password files), removed when this process exits: a
// gateway is stopped and restarted on the same data within a test file, so `stop` keeps them.
const made = [];
process.on("exit", () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

function launch(dataDir, mqtt, http, extra = []) {
  if (!BIN) throw new Error("AVIARY_BIN is not set: run `cargo xtask test`");
  const child = spawn(BIN, [...extra, "--mqtt", mqtt, "--http", http, "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("gateway did not start in 30 s")), 30_000);
    child.on("exit", (code) => reject(new Error(`gateway exited (${code})`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = line.match(/listening mqtt=(\S+) http=(\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, mqtt: m[1], http: m[2] });
      }
    });
  });
}

/** Starts the gateway; `args` go first on its command line (e.g. `--config FILE`). */
export async function startGateway({ args = [] } = {}) {
  const dataDir = tempDir("aviary-npm-test-");
  let gw = await launch(dataDir, "127.0.0.1:0", "127.0.0.1:0", args);
  const stop = () =>
    new Promise((resolve) => {
      if (gw.child.exitCode !== null || gw.child.signalCode !== null) return resolve();
      gw.child.removeAllListeners("exit");
      gw.child.on("exit", () => resolve());
      gw.child.kill("SIGKILL");
    });
  return {
    get wsUrl() { return `ws://${gw.http}/mqtt`; },
    get mqttUrl() { return `mqtt://${gw.mqtt}`; },
    get httpOrigin() { return `http://${gw.http}`; },
    stop,
    async restart() {
      await stop();
      gw = await launch(dataDir, gw.mqtt, gw.http, args);
    },
  };
}

/**
 * A gateway whose password file (written by `aviary passwd`) holds `users` ({ name: password }):
 * password logins and SCRAM-SHA-512 enhanced authentication. Failed logins answered at once.
 */
export async function startGatewayWithUsers(users) {
  const dir = tempDir("aviary-npm-users-");
  const passwd = join(dir, "passwd");
  for (const [name, password] of Object.entries(users)) {
    const run = spawnSync(BIN, ["passwd", passwd, name], { input: `${password}\n`, timeout: 20_000 });
    if (run.status !== 0) throw new Error(`aviary passwd failed: ${run.stderr}`);
  }
  const config = join(dir, "aviary.toml");
  writeFileSync(config, `[auth]\npassword_file = ${JSON.stringify(passwd)}\nlogin_failure_delay_ms = 0\n`);
  return startGateway({ args: ["--config", config] });
}

/** Resolves with the first `event` emitted by `emitter` (an aviary or MQTT.js client). */
export function once(emitter, event, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    const listener = (...args) => {
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args);
    };
    emitter.on(event, listener);
  });
}

/** Awaits a promise, failing after `ms`. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
