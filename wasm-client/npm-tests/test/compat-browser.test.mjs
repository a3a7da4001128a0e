// `aviary-mqtt/compat` in headless Chromium against the real gateway: the seed documents'
// MQTT.js snippets (read from ../shared/seed-snippets.md at test time, see lib/seeds.mjs) and
// a page of MQTT.js README examples run unchanged but for the import line. Devices and
// watchers on the other side are MQTT.js over TCP.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { startGateway, once } from "../lib/gateway.mjs";
import { serveStatic, launchChromium } from "../lib/browser.mjs";
import { readSeeds, seed } from "../lib/seeds.mjs";

let gw, server, browser, seeds;

before(async () => {
  seeds = readSeeds(); // first: a missing ../shared fails here, with the path it looked for
  gw = await startGateway();
  server = await serveStatic();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
  await gw?.stop();
});

/** A fresh page with `mqtt` from aviary-mqtt/compat, the helpers stubbed, `runSnippet`. */
async function seedPage() {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`${server.origin}/page/compat-seeds.html`);
  await page.waitForFunction(() => document.getElementById("status").textContent === "ready",
    null, { timeout: 15_000 });
  return page;
}

/** Opens a page and runs the snippet under `heading` in it, with the gateway as broker. */
async function runSeed(heading, page) {
  page ??= await seedPage();
  await page.evaluate(([code, url]) => window.runSnippet(code, url), [seed(seeds, heading), gw.wsUrl]);
  return page;
}

const connected = (page) =>
  page.waitForFunction(() => window.client?.connected === true, null, { timeout: 15_000 });

/** Waits until the page's stubs recorded a call matching `pattern` ([name, ...args]). */
function called(page, pattern) {
  return page.waitForFunction((pattern) => window.calls.some((call) =>
    pattern.every((want, i) => JSON.stringify(call[i]) === JSON.stringify(want) ||
      (want && typeof want === "object" && typeof call[i] === "object" &&
        Object.entries(want).every(([k, v]) => call[i]?.[k] === v)))),
  pattern, { timeout: 15_000 });
}

const logged = (page, line) =>
  page.waitForFunction((line) => window.logs.includes(line), line, { timeout: 15_000 });

test("the pet tracker, server processor and web app snippets work together, will included", async () => {
  const processor = await runSeed("Server processor");
  const app = await runSeed("Mobile / web app");
  await Promise.all([connected(processor), connected(app)]);
  // Both subscribe in their `connect` listener; let the SUBACKs arrive before the device starts.
  await processor.waitForTimeout(300);
  const device = await runSeed("Pet tracker (device)");
  await connected(device);
  assert.equal(await device.evaluate(() => window.client.options.clientId), "tracker-pet-123");
  // The gateway got each snippet's client id and username (an open gateway lets any user in).
  const clients = await (await fetch(`${gw.httpOrigin}/api/v1/clients`)).json();
  const users = Object.fromEntries(clients.map((c) => [c.client_id, c.username]));
  assert.equal(users["tracker-pet-123"], "device");
  assert.equal(users["server-processor"], "server");
  assert.equal(users["app-user-u1"], "user");

  // The processor sees status, location and activity, parsed from `message.toString()`.
  await called(processor, ["updateDeviceStatus", "123", { online: true }]);
  await called(processor, ["saveLocation", "123", { lat: 52.52, lng: 13.405, accuracy: 5 }]);
  await called(processor, ["checkGeofence", "123", { lat: 52.52 }]);
  await called(processor, ["saveActivity", "123", { steps: 1200, calories: 80 }]);
  await called(processor, ["updateDailyStats", "123", { steps: 1200 }]);
  // The web app, subscribed per pet, moves the marker and shows the device online.
  await called(app, ["updateMapMarker", "123", 52.52, 13.405]);
  await called(app, ["updateDeviceStatus", "123", true]);

  // The collar vanishes without DISCONNECT: its last will says it is offline.
  await device.close();
  await called(processor, ["updateDeviceStatus", "123", { online: false }]);
  await called(processor, ["notifyOwner", "123", "Device offline"]);
  await called(app, ["updateDeviceStatus", "123", false]);
  assert.deepEqual(await processor.evaluate(() => window.logs.filter((l) => l.startsWith("ERROR"))), []);
  await processor.close();
  await app.close();
});

test("the last will snippet: a page that vanishes leaves its will, retained", async () => {
  const watcher = await mqtt.connectAsync(gw.mqttUrl, { clientId: "will-watcher" });
  await watcher.subscribeAsync("pets/123/status", { qos: 1 });
  const page = await runSeed("Last will");
  await connected(page);
  const will = new Promise((resolve) => watcher.on("message", (topic, payload) => {
    const data = JSON.parse(payload.toString());
    if (data.status === "offline") resolve(data);
  }));
  await page.close();
  assert.deepEqual(await will, { status: "offline", reason: "disconnected" });
  await watcher.endAsync();
  // Retained: a later subscriber gets it at once.
  const late = await mqtt.connectAsync(gw.mqttUrl);
  const retained = once(late, "message");
  await late.subscribeAsync("pets/123/status", { qos: 1 });
  const [, payload, packet] = await retained;
  assert.equal(packet.retain, true);
  assert.deepEqual(JSON.parse(payload.toString()), { status: "offline", reason: "disconnected" });
  await late.endAsync();
});

test("the persistent session snippet gets its session back (clean: false)", async () => {
  const page = await runSeed("Persistent session");
  await connected(page);
  assert.equal(await page.evaluate(() => window.client.options.clean), false);
  await page.evaluate(() => window.client.endAsync());
  await runSeed("Persistent session", page);
  await connected(page);
  const connacks = await page.evaluate(() => window.connacks.map((c) => c.sessionPresent));
  assert.deepEqual(connacks, [true]);
  await page.close();
});

test("the basic publish/subscribe snippet receives its own temperature", async () => {
  const page = await runSeed("Basic publish/subscribe");
  await logged(page, "Temperature: 24.5°C");
  await page.close();
});

test("the one-line console client gets QoS 1 messages sent while it was away", async () => {
  const page = await runSeed("Console client");
  await logged(page, "/hello/s-pro: Hello, S-PRO!");
  await page.evaluate(() => window.client.endAsync());
  // While the console client is gone, a device publishes to its topic at QoS 1...
  const device = await mqtt.connectAsync(gw.mqttUrl, { clientId: "s-pro-device" });
  await device.publishAsync("/hello/s-pro", "while you were away", { qos: 1 });
  await device.endAsync();
  // ...and the same snippet, run again (clean: false, same clientId), receives it.
  await runSeed("Console client", page);
  await logged(page, "/hello/s-pro: while you were away");
  await page.close();
});

test("a throwing message listener is reported as uncaught and does not stop the others", async () => {
  const page = await seedPage();
  const errors = [];
  page.removeAllListeners("pageerror"); // expected here: collected rather than printed
  page.on("pageerror", (e) => errors.push(e.message));
  const code = `const client = mqtt.connect(BROKER_URL);
client.on("message", () => { throw new Error("listener bug"); });
client.on("message", (topic, message) => console.log("second " + message));
client.subscribe("compat/throw", () => client.publish("compat/throw", "still delivered"));`;
  await page.evaluate(([code, url]) => window.runSnippet(code, url), [code, gw.wsUrl]);
  await logged(page, "second still delivered");
  for (let i = 0; i < 50 && errors.length === 0; i++) await page.waitForTimeout(100);
  assert.deepEqual(errors, ["listener bug"]);
  assert.equal(await page.evaluate(() => window.client.connected), true);
  await page.close();
});

test("a page of MQTT.js README examples runs unchanged but for the import line", async () => {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`${server.origin}/page/compat-readme.html?ws=${encodeURIComponent(gw.wsUrl)}`);
  await page.waitForFunction(() => document.getElementById("status").textContent !== "running",
    null, { timeout: 30_000 });
  const logs = await page.evaluate(() => window.logs);
  assert.deepEqual(logs, [
    "Hello mqtt",
    "Starting",
    "Done",
    'granted [{"topic":"readme/a","qos":1},{"topic":"readme/b","qos":2}]',
    "published true",
    "message readme/a bytes qos=1 retain=false true",
    "unsubscribed true",
    "ended true false",
  ]);
  await page.close();
});
