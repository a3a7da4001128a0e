// Incoming QoS 0 messages per second delivered to a JavaScript callback in headless Chromium,
// for aviary-mqtt and MQTT.js on the same page and gateway. Run by `cargo xtask browser-bench`;
// a measurement, not a test.
//
// Method. The gateway drops QoS 0 messages for a subscriber that falls behind (its bounded
// queue, by design), so a publisher writing as fast as it can measures mostly loss. Instead a
// raw TCP publisher (pre-encoded PUBLISH packets) sends at a paced rate, and a search steps the
// rate up (x1.25 from START_RATE) until a trial fails, then bisects between the last passing
// and the first failing rate. A trial sends TRIAL_MS worth of messages (at most MESSAGES),
// waits until the page's count stops growing, and passes if
//   - the publisher sent at 95 % of the paced rate or more (the gateway holds back publishers
//     of a subscriber whose queue runs behind, so a slower send means the subscriber did not
//     take the paced rate),
//   - at least 99.9 % of what was sent reached the callback, and
//   - the subscriber kept pace: its rate, counted from its first delivery to its last (as the
//     broker bench in bench/ counts it), is at least 95 % of the rate the publisher sent at.
// The last condition matters: the WebSocket path (gateway, kernel, browser) buffers seconds
// of messages, so a subscriber at a third of the sending rate still receives every message of
// a short trial, only late; received/sent alone would pass it.
// A failed rate is tried once more before it counts as failed: on a shared 2-core machine a
// stall of 20 ms in the browser or the gateway is enough for the gateway to mark the
// subscriber slow and drop its QoS 0 messages (by design), and one such stall should not end
// the search. A rate just above what the client takes fails both times.
// A client's figure for a round is its highest passing rate, printed with the subscriber's rate
// and received/sent beside it. Rounds interleave the clients (aviary-mqtt, MQTT.js,
// aviary-mqtt, ...) and the medians are reported. Every loop is bounded in count and in time.
//
// Environment: ROUNDS (3), PAYLOAD bytes (64), TRIAL_MS (2000), MESSAGES per trial at most
// (1000000), START_RATE msg/s (10000).
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { join, extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium } from "playwright-core";
import { startGateway } from "../lib/gateway.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PAYLOAD = Number(process.env.PAYLOAD ?? 64);
const TRIAL_MS = Number(process.env.TRIAL_MS ?? 2000);
const MAX_MESSAGES = Number(process.env.MESSAGES ?? 1_000_000);
const START_RATE = Number(process.env.START_RATE ?? 10_000);

/** A trial passes when at least this share of what was sent reached the callback. */
const PASS = 0.999;
/** ... and when the publisher's rate is at least this share of the paced rate, and the
 * subscriber's at least this share of the publisher's. */
const KEEP_UP = 0.95;
/** Factor between rates while the search climbs (or descends, when START_RATE fails). */
const STEP = 1.25;
/** The bisection stops once failing / passing is at most this (two steps after one STEP). */
const RESOLUTION = 1.06;
/** Bounds of the search: trials per client per round, and the rates it may try. */
const MAX_TRIALS = 32;
const MIN_RATE = 500;
const MAX_RATE = 2_000_000;
/** Longest burst the publisher writes at once when it has fallen behind its schedule. */
const MAX_BURST_MS = 10;
/** After sending: how often the page is asked, how long a count may stand still, and the most
 * a trial waits for stragglers. */
const POLL_MS = 100;
const IDLE_MS = 1000;
const DRAIN_MAX_MS = 15_000;

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const CLIENTS = { "aviary-mqtt": "subscribeAviary", "MQTT.js": "subscribeMqttjs" };

function serve() {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = path === "/" ? "bench/page.html" : normalize(path).replace(/^\/+/, "");
    try {
      const body = await readFile(join(ROOT, file));
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch { res.writeHead(404).end(); }
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r(server)));
}

/** An MQTT 3.1.1 QoS 0 PUBLISH, encoded by hand (remaining length < 16384). */
function publishPacket(topic, payload) {
  const t = Buffer.from(topic);
  const len = 2 + t.length + payload.length;
  const head = len < 128 ? Buffer.from([0x30, len]) : Buffer.from([0x30, (len & 0x7f) | 0x80, len >> 7]);
  const tl = Buffer.from([t.length >> 8, t.length & 0xff]);
  return Buffer.concat([head, tl, t, payload]);
}

/** A raw MQTT 3.1.1 connection for publishing, after its CONNACK (bounded wait). */
async function connectPublisher(mqttAddr) {
  const [host, port] = mqttAddr.split(":");
  const socket = tcpConnect(Number(port), host);
  const id = Buffer.from("bench-publisher");
  const connect = Buffer.concat([
    Buffer.from([0x10, 12 + id.length, 0, 4]), Buffer.from("MQTT"),
    Buffer.from([4, 2, 0, 60, 0, id.length]), id,
  ]);
  const connack = new Promise((resolve, reject) => {
    socket.once("data", resolve);
    socket.once("error", reject);
  });
  socket.write(connect);
  await within(connack, 10_000, "the publisher's CONNACK");
  return socket;
}

/** Ends the publisher's connection with a DISCONNECT. */
function disconnect(socket) {
  socket.end(Buffer.from([0xe0, 0]));
}

/** Milliseconds on a monotonic clock (wall-clock steps would distort the pacing). */
function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Writes `count` copies of `packet` at `rate` messages per second: every timer tick, what the
 * clock says is due since the start, at most MAX_BURST_MS worth at once (so a stall in this
 * process is not repaid as one large burst). Respects backpressure. Gives up after three times
 * the planned duration plus 5 s. Returns what was sent and how long sending took (ms).
 */
async function sendPaced(socket, packet, count, rate) {
  const burst = Math.max(1, Math.min(count, Math.ceil((rate * MAX_BURST_MS) / 1000)));
  const block = Buffer.concat(Array(burst).fill(packet));
  const start = now();
  const giveUp = start + (3 * count * 1000) / rate + 5000;
  let sent = 0;
  let last = start;
  while (sent < count && now() < giveUp) {
    const due = Math.min(count, Math.floor(((now() - start) * rate) / 1000)) - sent;
    const n = Math.min(due, burst);
    if (n > 0) {
      const drained = socket.write(block.subarray(0, n * packet.length));
      sent += n;
      last = now();
      if (!drained) await within(new Promise((r) => socket.once("drain", r)), 10_000, "drain");
    }
    if (sent < count) await sleep(1);
  }
  return { sent, ms: last - start };
}

/**
 * Asks the page for its count until it reaches `sent`, stands still for IDLE_MS, or DRAIN_MAX_MS
 * have passed. Returns the page's last stats.
 */
async function waitForDeliveries(page, sent) {
  const start = now();
  let stats = await pageStats(page);
  let changed = now();
  while (stats.count < sent && now() - changed < IDLE_MS && now() - start < DRAIN_MAX_MS) {
    await sleep(POLL_MS);
    const next = await pageStats(page);
    if (next.count !== stats.count) changed = now();
    stats = next;
  }
  return stats;
}

/** The page's count of the current trial (bounded: a flooded page may answer late). */
function pageStats(page) {
  return within(page.evaluate(() => window.stats()), 10_000, "the page's count");
}

/** One trial: a fresh subscription on a fresh topic, `rate` msg/s for TRIAL_MS. */
async function trial(page, gw, which, rate) {
  const count = Math.max(1, Math.min(MAX_MESSAGES, Math.round((rate * TRIAL_MS) / 1000)));
  const topic = `bench/${Math.random().toString(36).slice(2)}`;
  await within(page.evaluate(([fn, url, t]) => window[fn](url, t), [CLIENTS[which], gw.wsUrl, topic]),
    20_000, `${which} to subscribe`);
  const publisher = await connectPublisher(gw.mqttUrl.replace("mqtt://", ""));
  try {
    const packet = publishPacket(topic, Buffer.alloc(PAYLOAD, 0x61));
    const sending = await sendPaced(publisher, packet, count, rate);
    const stats = await waitForDeliveries(page, sending.sent);
    const ms = stats.last - stats.first;
    const result = {
      rate,
      sent: sending.sent,
      received: stats.count,
      offered: sending.ms > 0 ? (sending.sent * 1000) / sending.ms : 0,
      delivered: stats.count > 1 && ms > 0 ? (stats.count * 1000) / ms : 0,
    };
    return { ...result, failure: failure(result, count) };
  } finally {
    disconnect(publisher);
    await within(page.evaluate(() => window.unsubscribe()), 10_000, `${which} to disconnect`);
  }
}

/** Why a trial failed, or null if it passed. */
function failure(t, planned) {
  if (t.sent < planned) return `the publisher sent only ${t.sent} of ${planned} in time`;
  if (t.offered < KEEP_UP * t.rate) return "held back: publisher < 95 % of the paced rate";
  if (t.received < PASS * t.sent) return "lost > 0.1 %";
  if (t.delivered < KEEP_UP * t.offered) return "fell behind: subscriber < 95 % of the sending rate";
  return null;
}

/**
 * The next rate to try, or null when the search is done: climb by STEP until a trial fails,
 * descend by STEP while none has passed, then bisect (geometrically) down to RESOLUTION.
 */
function nextRate(passing, failing) {
  if (failing === undefined) return passing * STEP <= MAX_RATE ? Math.round(passing * STEP) : null;
  if (passing === undefined) return failing / STEP >= MIN_RATE ? Math.round(failing / STEP) : null;
  if (failing / passing <= RESOLUTION) return null;
  return Math.round(Math.sqrt(passing * failing));
}

/** One client's search for its highest passing rate; logs every trial. */
async function search(page, gw, which) {
  let best, failing, rate = START_RATE, retried = false;
  for (let n = 0; n < MAX_TRIALS && rate !== null; n += 1) {
    const t = await trial(page, gw, which, rate);
    const passed = t.failure === null;
    const again = !passed && !retried;
    console.log(`    ${which.padEnd(12)} ${describe(t)}` +
      `${passed ? "" : `  FAIL: ${t.failure}${again ? " (trying once more)" : ""}`}`);
    if (again) {
      retried = true;
      continue;
    }
    retried = false;
    if (passed && (best === undefined || t.rate > best.rate)) best = t;
    if (!passed && (failing === undefined || t.rate < failing)) failing = t.rate;
    rate = nextRate(best?.rate, failing);
  }
  return best;
}

function fmt(rate) {
  return Math.round(rate).toLocaleString("en-US");
}

/** A trial as one line: every rate with received/sent beside it. */
function describe(t) {
  return `${fmt(t.rate)} msg/s paced (sent at ${fmt(t.offered)}): ${t.received}/${t.sent} received, ` +
    `${fmt(t.delivered)} msg/s at the subscriber`;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Medians over the rounds; a round where even MIN_RATE failed counts as 0. */
function summarize(which, bests) {
  const rates = bests.map((b) => b?.rate ?? 0);
  const delivered = bests.map((b) => b?.delivered ?? 0);
  const runs = bests.map((b) => (b
    ? `${fmt(b.rate)} paced / ${fmt(b.delivered)} at the subscriber, ${b.received}/${b.sent} received`
    : "none passed"));
  console.log(`${which}: median ${fmt(median(rates))} msg/s paced, ${fmt(median(delivered))} msg/s ` +
    `at the subscriber; runs: ${runs.join("; ")}`);
}

function printSizes() {
  const gz = (f) => gzipSync(readFileSync(join(ROOT, f)), { level: 9 }).length;
  const wasm = gz("node_modules/aviary-mqtt/web/aviary_mqtt_bg.wasm");
  // The JavaScript a page loads: the glue and the API it imports, gzipped as one bundle.
  const glue = gzipSync(Buffer.concat(["web/aviary_mqtt.js", "api.js"].map((f) =>
    readFileSync(join(ROOT, "node_modules/aviary-mqtt", f)))), { level: 9 }).length;
  const mqttjs = gz("node_modules/mqtt/dist/mqtt.min.js");
  console.log(`size, gzip -9: aviary-mqtt ${((wasm + glue) / 1024).toFixed(1)} KiB (.wasm ${(wasm / 1024).toFixed(1)} + JS ${(glue / 1024).toFixed(1)}); MQTT.js mqtt.min.js ${(mqttjs / 1024).toFixed(1)} KiB`);
}

/** Awaits a promise, failing after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const gw = await startGateway();
  const server = await serve();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => document.title === "ready", null, { timeout: 20_000 });
    console.log(`QoS 0, ${PAYLOAD}-byte payloads, paced from ${fmt(START_RATE)} msg/s (x${STEP}, then bisected); ` +
      `trials of ${TRIAL_MS} ms (at most ${MAX_MESSAGES} messages); pass: publisher at >= 95 % of the paced rate, ` +
      `>= 99.9 % received, subscriber at >= 95 % of the publisher's rate; a failed rate is tried twice; ` +
      `${ROUNDS} rounds, clients interleaved, same page, same gateway`);
    const bests = Object.fromEntries(Object.keys(CLIENTS).map((c) => [c, []]));
    for (let round = 1; round <= ROUNDS; round += 1) {
      console.log(`round ${round}/${ROUNDS}`);
      for (const which of Object.keys(CLIENTS)) {
        const best = await search(page, gw, which);
        bests[which].push(best);
        console.log(`  ${which.padEnd(12)} highest passing: ${best ? describe(best) : "none"}`);
      }
    }
    for (const [which, bs] of Object.entries(bests)) summarize(which, bs);
    printSizes();
  } finally {
    await browser.close();
    server.close();
    await gw.stop();
  }
}

await main();
