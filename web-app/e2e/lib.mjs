// Helpers of the web app's end-to-end tests: the real gateway on port 0, headless Chromium
// through playwright-core, and pet trackers as MQTT.js clients over TCP.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import mqtt from "mqtt";
import { chromium } from "playwright-core";

/** The workspace root: the gateway serves `static/` relative to it. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** Where screenshots and traces go. */
export const ARTIFACTS = process.env.AVIARY_E2E_ARTIFACTS ?? join(ROOT, "target/e2e");

/**
 * Starts `aviary` (AVIARY_BIN, default target/debug/aviary) on port 0 with a fresh data
 * directory, and resolves once it logs `listening mqtt=… http=…` (at most 30 s).
 */
export async function startGateway(extraArgs = []) {
  const bin = process.env.AVIARY_BIN ?? join(ROOT, "target/debug/aviary");
  const dataDir = mkdtempSync(join(tmpdir(), "aviary-e2e-"));
  const child = spawn(
    bin,
    ["--mqtt", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir", dataDir, ...extraArgs],
    { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout });
  const addrs = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("gateway did not start within 30 s")), 30_000);
    child.once("exit", (code) => fail(new Error(`gateway exited with ${code}`)));
    lines.on("line", (line) => {
      const m = /listening mqtt=(\S+) http=(\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        ok({ mqtt: m[1], http: m[2] });
      }
    });
  });
  return {
    ...addrs,
    url: `http://${addrs.http}/`,
    /** Stops the gateway (again: no-op) and removes its data. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((ok) => child.once("exit", ok));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A new page of `browser` on the gateway's web app, once it is connected; page errors go to
 * the console. */
export async function openConnectedMap(browser, gateway) {
  const page = await browser.context.newPage();
  page.on("pageerror", (err) => console.error("page error:", err));
  await page.goto(gateway.url);
  await page.waitForSelector('.conn[data-state="connected"]', { timeout: 20_000 });
  return page;
}

/** Headless Chromium (Debian's, CHROMIUM overrides) with a fresh profile. */
export async function launchBrowser() {
  const userDataDir = mkdtempSync(join(tmpdir(), "aviary-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A pet tracker over TCP, as the simulator's: a retained last will `{"online":false}` on
 * `pets/{id}/status`, `{"online":true}` retained once connected.
 */
export async function connectTracker(mqttAddr, id) {
  const client = mqtt.connect(`mqtt://${mqttAddr}`, {
    clientId: `e2e-tracker-${id}-${process.pid}`,
    reconnectPeriod: 0,
    will: { topic: `pets/${id}/status`, payload: '{"online":false}', qos: 1, retain: true },
  });
  await new Promise((ok, fail) => {
    client.once("connect", ok);
    client.once("error", fail);
  });
  const tracker = {
    client,
    publish: (topic, payload, opts = {}) => client.publishAsync(topic, payload, { qos: 1, ...opts }),
    online: () => tracker.publish(`pets/${id}/status`, '{"online":true}', { retain: true }),
    moveTo: (lat, lng, accuracy = 8) =>
      tracker.publish(
        `pets/${id}/location`,
        JSON.stringify({ lat, lng, accuracy, timestamp: Date.now() }),
      ),
    /** Kills the socket without DISCONNECT, so the broker publishes the will. */
    crash() {
      client.stream.destroy();
      client.end(true);
    },
    end: () => client.endAsync(),
  };
  return tracker;
}

/** Makes sure the artifacts directory exists and returns a path in it. */
export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

/** `a` metres north and `b` metres east of (lat, lng). */
export function offset(lat, lng, north, east) {
  const dLat = north / 111_195;
  const dLng = east / (111_195 * Math.cos((lat * Math.PI) / 180));
  return [lat + dLat, lng + dLng];
}
