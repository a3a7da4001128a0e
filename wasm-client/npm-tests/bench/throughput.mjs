// Incoming QoS 0 messages per second delivered to a JavaScript callback in headless Chromium,
// for aviary-mqtt and MQTT.js on the same page and gateway, at 64-byte and 1 KiB payloads, with
// each client's connect time and memory. Run by `cargo xtask browser-bench`; a measurement,
// not a test.
//
// Chromium is spawned directly and driven over its DevTools pipe (bench/cdp.mjs) with only the
// Runtime and Page domains enabled: Playwright enables Network, which mirrors every WebSocket
// frame to the driver and cut MQTT.js's rate about threefold (issue 14).
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
// Connect time (bench/connect.html, which loads only one client): from navigation start
// (performance.timeOrigin) to the client's `connect`, read in the page with performance.now().
// Cold is the first navigation of a fresh Chromium on a fresh profile (nothing cached); warm
// is a reload of the same page (scripts and .wasm from the HTTP cache). CONNECT_RUNS fresh
// browsers per client, interleaved, each reloaded WARM_RUNS times; medians are reported.
// Memory: the page's JS heap in use (Runtime.getHeapUsage usedSize) after a full GC
// (HeapProfiler.collectGarbage) once the client is connected, beside the empty page's; and
// aviary-mqtt's wasm memory (the WebAssembly.Memory that the package's init() returns among
// the module's exports: buffer.byteLength). During a flood: the highest of both, sampled every
// SAMPLE_MS on the bench page (which loads both clients) during one more trial per client at
// its median passing rate.
//
// Environment: ROUNDS (3), PAYLOADS bytes, comma-separated (64,1024), TRIAL_MS (2000),
// MESSAGES per trial at most (1000000), START_RATE msg/s (10000), CONNECT_RUNS (3),
// WARM_RUNS (5).
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { join, extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Browser, within } from "./cdp.mjs";
import { startGateway } from "../lib/gateway.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PAYLOADS = (process.env.PAYLOADS ?? "64,1024").split(",").map(Number);
const TRIAL_MS = Number(process.env.TRIAL_MS ?? 2000);
const MAX_MESSAGES = Number(process.env.MESSAGES ?? 1_000_000);
const START_RATE = Number(process.env.START_RATE ?? 10_000);
const CONNECT_RUNS = Number(process.env.CONNECT_RUNS ?? 3);
const WARM_RUNS = Number(process.env.WARM_RUNS ?? 5);
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

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
/** How often heap and wasm memory are read during a flood. */
const SAMPLE_MS = 250;
/** Longest wait for a page to load and its client to connect. */
const CONNECT_MAX_MS = 20_000;

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const CLIENTS = { "aviary-mqtt": "subscribeAviary", "MQTT.js": "subscribeMqttjs" };
/** The client parameter of bench/connect.html. */
const CONNECT_PAGE = { "aviary-mqtt": "aviary", "MQTT.js": "mqttjs" };

function serve() {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = path === "/" ? "bench/page.html" : normalize(path).replace(/^\/+/, "");
    try {
      const body = await readFile(join(ROOT, file));
      // Cacheable, so that a warm load (a reload) takes the scripts and .wasm from the cache.
      res.writeHead(200, {
        "content-type": TYPES[extname(file)] ?? "application/octet-stream",
        "cache-control": "max-age=3600",
      });
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
  return page.evaluate("window.stats()", 10_000);
}

/**
 * Reads the page's JS heap in use and aviary-mqtt's wasm memory every SAMPLE_MS until `stop()`
 * is called (at most 10 minutes of samples); resolves with the highest of each.
 */
function sampleMemory(page) {
  let running = true;
  const done = (async () => {
    const peak = { heap: 0, wasm: 0 };
    for (let n = 0; running && n < 2400; n += 1) {
      peak.heap = Math.max(peak.heap, await page.heapUsed());
      peak.wasm = Math.max(peak.wasm, await page.evaluate("window.wasmBytes()"));
      await sleep(SAMPLE_MS);
    }
    return peak;
  })();
  return { stop: () => { running = false; return done; } };
}

/**
 * One trial: a fresh subscription on a fresh topic, `rate` msg/s of `payload`-byte messages
 * for TRIAL_MS. With `sample`, the page's memory is read during it (result.peak).
 */
async function trial(page, gw, which, rate, payload, sample = false) {
  const count = Math.max(1, Math.min(MAX_MESSAGES, Math.round((rate * TRIAL_MS) / 1000)));
  const topic = `bench/${Math.random().toString(36).slice(2)}`;
  await page.evaluate(`window.${CLIENTS[which]}(${JSON.stringify(gw.wsUrl)}, ${JSON.stringify(topic)})`);
  const publisher = await connectPublisher(gw.mqttUrl.replace("mqtt://", ""));
  try {
    const packet = publishPacket(topic, Buffer.alloc(payload, 0x61));
    const sampler = sample ? sampleMemory(page) : null;
    const sending = await sendPaced(publisher, packet, count, rate);
    const stats = await waitForDeliveries(page, sending.sent);
    const peak = await sampler?.stop();
    const ms = stats.last - stats.first;
    const result = {
      rate,
      sent: sending.sent,
      received: stats.count,
      offered: sending.ms > 0 ? (sending.sent * 1000) / sending.ms : 0,
      delivered: stats.count > 1 && ms > 0 ? (stats.count * 1000) / ms : 0,
      peak,
    };
    return { ...result, failure: failure(result, count) };
  } finally {
    disconnect(publisher);
    await page.evaluate("window.unsubscribe()", 10_000);
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
async function search(page, gw, which, payload) {
  let best, failing, rate = START_RATE, retried = false;
  for (let n = 0; n < MAX_TRIALS && rate !== null; n += 1) {
    const t = await trial(page, gw, which, rate, payload);
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

/** The median round's best trial (a round where even MIN_RATE failed counts as rate 0). */
function medianRound(bests) {
  const sorted = [...bests].sort((a, b) => (a?.rate ?? 0) - (b?.rate ?? 0));
  return sorted[Math.floor(sorted.length / 2)];
}

/** One line per client and payload: the median round, and every round. */
function summarize(which, payload, bests) {
  const m = medianRound(bests);
  const runs = bests.map((b) => (b
    ? `${fmt(b.rate)} paced / ${fmt(b.delivered)} at the subscriber, ${b.received}/${b.sent} received`
    : "none passed"));
  console.log(`${which} ${payload} B: median ${fmt(m?.rate ?? 0)} msg/s paced, ${fmt(m?.delivered ?? 0)} msg/s ` +
    `at the subscriber; runs: ${runs.join("; ")}`);
}

/** Gzipped sizes (KiB) of what a page loads for each client. */
function sizes() {
  // GNU gzip -9, as `cargo xtask npm` measures: Node's zlib at level 9 comes out about
  // 100 bytes larger on the package, so the two printed different sizes.
  const gzip9 = (...files) => {
    const input = Buffer.concat(files.map((f) => readFileSync(join(ROOT, f))));
    return execFileSync("gzip", ["-9", "-c"], { input }).length;
  };
  const pkg = (f) => `node_modules/aviary-mqtt/${f}`;
  const wasm = gzip9(pkg("web/aviary_mqtt_bg.wasm"));
  // The JavaScript a page loads: the glue and the API it imports, gzipped as one bundle.
  const glue = gzip9(pkg("web/aviary_mqtt.js"), pkg("api.js"));
  const mqttjs = gzip9("node_modules/mqtt/dist/mqtt.min.js");
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  return {
    "aviary-mqtt": `${kib(wasm + glue)} (.wasm ${kib(wasm)} + JS ${kib(glue)})`,
    "MQTT.js": `${kib(mqttjs)} (mqtt.min.js)`,
  };
}

/** The URL of the connect page for `which` (or the empty page, "none"). */
function connectUrl(origin, gw, client) {
  return `${origin}/bench/connect.html?client=${client}&url=${encodeURIComponent(gw.wsUrl)}`;
}

/**
 * Starts a navigation (`navigate()`: Page.navigate or Page.reload) and waits for the page's
 * report of its client's `connect`; returns the milliseconds from navigation start.
 */
async function connectTime(page, navigate) {
  const report = page.nextReport("aviary-bench-connect", CONNECT_MAX_MS, "the client's connect");
  // Awaited below; this only keeps a failed navigation from leaving it unhandled.
  report.catch(() => {});
  await navigate();
  const [ms, error] = await report;
  if (ms < 0) throw new Error(`connect page: ${error}`);
  return ms;
}

/**
 * One fresh Chromium on a fresh profile: the cold connect (its first navigation), WARM_RUNS
 * reloads, then the heap after a GC and the wasm memory, with the client still connected.
 */
async function connectRun(origin, gw, client) {
  const browser = await Browser.launch(CHROMIUM);
  try {
    const page = await browser.newPage();
    const url = connectUrl(origin, gw, client);
    const cold = await connectTime(page, () => page.send("Page.navigate", { url }));
    const warm = [];
    for (let n = 0; n < WARM_RUNS; n += 1) warm.push(await connectTime(page, () => page.send("Page.reload")));
    const heap = await page.heapUsed({ gc: true });
    const wasm = await page.evaluate("window.wasm ? window.wasm.memory.buffer.byteLength : 0");
    return { cold, warm: median(warm), heap, wasm };
  } finally {
    await browser.close();
  }
}

/** CONNECT_RUNS runs per client, interleaved, and the empty page's as a baseline; medians. */
async function measureConnect(origin, gw) {
  const clients = [...Object.keys(CONNECT_PAGE), "empty page"];
  const runs = Object.fromEntries(clients.map((c) => [c, []]));
  for (let n = 0; n < CONNECT_RUNS; n += 1) {
    for (const which of clients) {
      const r = await connectRun(origin, gw, CONNECT_PAGE[which] ?? "none");
      runs[which].push(r);
      console.log(`  connect ${which.padEnd(12)} cold ${r.cold.toFixed(1)} ms, warm ${r.warm.toFixed(1)} ms ` +
        `(median of ${WARM_RUNS}), heap after GC ${mb(r.heap)}, wasm ${mb(r.wasm)}`);
    }
  }
  const med = (rs, key) => median(rs.map((r) => r[key]));
  return Object.fromEntries(clients.map((c) => [c, {
    cold: med(runs[c], "cold"), warm: med(runs[c], "warm"), heap: med(runs[c], "heap"),
    wasm: med(runs[c], "wasm"), colds: runs[c].map((r) => r.cold), warms: runs[c].map((r) => r.warm),
  }]));
}

function mb(bytes) {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

/** The rate search for every payload, ROUNDS rounds, clients interleaved; then a sampled flood. */
async function measureThroughput(page, gw) {
  const results = {};
  for (const payload of PAYLOADS) {
    console.log(`QoS 0, ${payload}-byte payloads, paced from ${fmt(START_RATE)} msg/s (x${STEP}, then bisected); ` +
      `trials of ${TRIAL_MS} ms (at most ${MAX_MESSAGES} messages); pass: publisher at >= 95 % of the paced rate, ` +
      `>= 99.9 % received, subscriber at >= 95 % of the publisher's rate; a failed rate is tried twice; ` +
      `${ROUNDS} rounds, clients interleaved, same page, same gateway`);
    const bests = Object.fromEntries(Object.keys(CLIENTS).map((c) => [c, []]));
    for (let round = 1; round <= ROUNDS; round += 1) {
      console.log(`round ${round}/${ROUNDS}, ${payload} B`);
      for (const which of Object.keys(CLIENTS)) {
        const best = await search(page, gw, which, payload);
        bests[which].push(best);
        console.log(`  ${which.padEnd(12)} highest passing: ${best ? describe(best) : "none"}`);
      }
    }
    results[payload] = {};
    for (const [which, bs] of Object.entries(bests)) {
      summarize(which, payload, bs);
      const m = medianRound(bs);
      // Memory during a flood: one more trial at the client's median passing rate, sampled.
      const flood = await trial(page, gw, which, m?.rate ?? MIN_RATE, payload, true);
      console.log(`  flood ${which.padEnd(12)} ${describe(flood)}; peak heap ${mb(flood.peak.heap)}, ` +
        `wasm ${mb(flood.peak.wasm)}${flood.failure ? ` (this trial: ${flood.failure})` : ""}`);
      results[payload][which] = { median: m, runs: bs, flood };
    }
  }
  return results;
}

/** The summary table (and the ratio of the medians). */
function printTable(sizeOf, connect, throughput) {
  const rows = [["", ...Object.keys(CLIENTS)]];
  const row = (label, f) => rows.push([label, ...Object.keys(CLIENTS).map(f)]);
  row("size, gzip -9", (c) => sizeOf[c]);
  for (const payload of PAYLOADS) {
    row(`msg/s into a callback, ${payload} B (median round: received/sent)`, (c) => {
      const m = throughput[payload][c].median;
      return m ? `${fmt(m.rate)} (${fmt(m.delivered)} at the subscriber; ${m.received}/${m.sent})` : "none passed";
    });
  }
  row("connect, cold / warm (median ms)", (c) => `${connect[c].cold.toFixed(0)} / ${connect[c].warm.toFixed(0)}`);
  const empty = connect["empty page"].heap;
  row(`JS heap after connect, after GC (empty page ${mb(empty)})`,
    (c) => `${mb(connect[c].heap)} (+${mb(connect[c].heap - empty)})`);
  for (const payload of PAYLOADS) {
    row(`JS heap during a ${payload} B flood (peak; bench page, both clients loaded)`,
      (c) => mb(throughput[payload][c].flood.peak.heap));
  }
  row("wasm memory after connect / peak during floods",
    (c) => (c === "aviary-mqtt"
      ? `${mb(connect[c].wasm)} / ${PAYLOADS.map((p) => mb(throughput[p][c].flood.peak.wasm)).join(", ")}`
      : "none"));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i])).join(" | "));
  for (const payload of PAYLOADS) {
    const a = throughput[payload]["aviary-mqtt"].median?.rate ?? 0;
    const b = throughput[payload]["MQTT.js"].median?.rate ?? 0;
    console.log(`ratio aviary-mqtt / MQTT.js, ${payload} B: ${b > 0 ? `${(a / b).toFixed(2)}x` : "n/a"}`);
  }
}

async function main() {
  const gw = await startGateway();
  const server = await serve();
  const origin = `http://127.0.0.1:${server.address().port}`;
  let browser;
  try {
    console.log(`Connect time and memory: ${CONNECT_RUNS} fresh browsers per client, ${WARM_RUNS} reloads each`);
    const connect = await measureConnect(origin, gw);
    browser = await Browser.launch(CHROMIUM);
    const page = await browser.newPage();
    await page.navigate(`${origin}/`);
    await page.waitFor(`document.title === "ready"`, 20_000, "the bench page");
    const throughput = await measureThroughput(page, gw);
    printTable(sizes(), connect, throughput);
  } finally {
    await browser?.close();
    server.close();
    await gw.stop();
  }
}

await main();
