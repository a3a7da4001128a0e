// Incoming QoS 0 messages per second delivered to a JavaScript callback in headless Chromium,
// for aviary-mqtt and MQTT.js on the same page and gateway, one after the other. A raw TCP
// publisher (pre-encoded PUBLISH packets, written as fast as the socket takes them) feeds the
// gateway. Run by `cargo xtask browser-bench`; a measurement, not a test.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { join, extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { startGateway } from "../lib/gateway.mjs";

const N = Number(process.env.MESSAGES ?? 200_000);
const PAYLOAD = Number(process.env.PAYLOAD ?? 64);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

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

/** Connects over TCP and writes `n` PUBLISH packets, respecting backpressure. */
async function publish(mqttAddr, topic, n) {
  const [host, port] = mqttAddr.split(":");
  const socket = tcpConnect(Number(port), host);
  await new Promise((r) => socket.once("connect", r));
  const id = Buffer.from("bench-publisher");
  const connect = Buffer.concat([
    Buffer.from([0x10, 12 + id.length, 0, 4]), Buffer.from("MQTT"),
    Buffer.from([4, 2, 0, 60, 0, id.length]), id,
  ]);
  socket.write(connect);
  await new Promise((r) => socket.once("data", r)); // CONNACK
  const one = publishPacket(topic, Buffer.alloc(PAYLOAD, 0x61));
  const batch = Buffer.concat(Array(1000).fill(one));
  for (let sent = 0; sent < n; sent += 1000) {
    if (!socket.write(batch)) await new Promise((r) => socket.once("drain", r));
  }
  socket.end(Buffer.from([0xe0, 0]));
}

async function measure(page, gw, which) {
  const topic = `bench/${which}/${Math.random().toString(36).slice(2)}`;
  await page.evaluate(([fn, url, t, n]) => window[fn](url, t, n),
    [which === "aviary-mqtt" ? "subscribeAviary" : "subscribeMqttjs", gw.wsUrl, topic, N]);
  await publish(gw.mqttUrl.replace("mqtt://", ""), topic, N);
  const r = await page.evaluate(() => window.result);
  const rate = r.ms > 0 ? (r.count / r.ms) * 1000 : 0;
  return { ...r, rate };
}

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
  console.log(`${N} QoS 0 messages of ${PAYLOAD} bytes per run, ${ROUNDS} runs each, same page, same gateway`);
  const results = { "aviary-mqtt": [], "MQTT.js": [] };
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const which of Object.keys(results)) {
      const r = await measure(page, gw, which);
      results[which].push(r);
      console.log(`  ${which.padEnd(12)} ${r.count} received in ${r.ms.toFixed(0)} ms: ${Math.round(r.rate)} msg/s`);
    }
  }
  for (const [which, rs] of Object.entries(results)) {
    const rates = rs.map((r) => r.rate).sort((a, b) => a - b);
    console.log(`${which}: median ${Math.round(rates[Math.floor(rates.length / 2)])} msg/s (best ${Math.round(rates.at(-1))})`);
  }
  const gz = (f) => gzipSync(readFileSync(join(ROOT, f)), { level: 9 }).length;
  const wasm = gz("node_modules/aviary-mqtt/web/aviary_mqtt_bg.wasm");
  // The JavaScript a page loads: the glue and the API it imports, gzipped as one bundle.
  const glue = gzipSync(Buffer.concat(["web/aviary_mqtt.js", "api.js"].map((f) =>
    readFileSync(join(ROOT, "node_modules/aviary-mqtt", f)))), { level: 9 }).length;
  const mqttjs = gz("node_modules/mqtt/dist/mqtt.min.js");
  console.log(`size, gzip -9: aviary-mqtt ${((wasm + glue) / 1024).toFixed(1)} KiB (.wasm ${(wasm / 1024).toFixed(1)} + JS ${(glue / 1024).toFixed(1)}); MQTT.js mqtt.min.js ${(mqttjs / 1024).toFixed(1)} KiB`);
} finally {
  await browser.close();
  server.close();
  await gw.stop();
}
