// A plain HTML page importing the packed package (import map, <script type="module">) in
// headless Chromium, talking to the gateway and, through it, to a TCP device (MQTT.js).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { startGateway, once } from "../lib/gateway.mjs";
import { serveStatic, launchChromium } from "../lib/browser.mjs";

let gw, server, origin, browser;

before(async () => {
  gw = await startGateway();
  server = await serveStatic();
  origin = server.origin;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
  await gw?.stop();
});

async function openPage({ keepalive = 30, freezeTimers = false, noWorker = false } = {}) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.addInitScript(({ freezeTimers, noWorker }) => {
    // A background tab at its worst: main-thread timers never fire.
    if (freezeTimers) {
      window.setTimeout = () => 0;
      window.setInterval = () => 0;
    }
    if (noWorker) delete window.Worker;
  }, { freezeTimers, noWorker });
  const ws = encodeURIComponent(gw.wsUrl);
  await page.goto(`${origin}/?ws=${ws}&keepalive=${keepalive}`);
  await page.waitForFunction(() => document.getElementById("status").textContent === "connected",
    null, { timeout: 15_000 });
  return page;
}

test("a plain page talks to the gateway and to a TCP device through it", async () => {
  const page = await openPage();
  const device = await mqtt.connectAsync(gw.mqttUrl, { clientId: "collar-42" });
  await device.subscribeAsync("pets/42/cmd", { qos: 1 });
  await device.publishAsync("pets/42/location", '{"lat":52.5,"lng":13.4}', { qos: 1 });
  await page.waitForFunction(
    () => document.getElementById("messages").textContent.includes('pets/42/location {"lat":52.5'),
    null, { timeout: 10_000 });
  const command = once(device, "message");
  await page.evaluate(() => window.sendCommand(42, "find-me"));
  const [topic, payload] = await command;
  assert.equal(topic, "pets/42/cmd");
  assert.equal(payload.toString(), "find-me");
  await device.endAsync();
  await page.close();
});

// The gateway drops a client silent for 1.5 x keep-alive. With main-thread timers frozen,
// the client on a Worker timer must stay connected; the control (no Worker, so it falls back
// to the frozen setTimeout) shows the freeze is real: it is dropped.
test("keep-alive survives frozen main-thread timers thanks to the Worker timer", async () => {
  const [withWorker, control] = await Promise.all([
    openPage({ keepalive: 2, freezeTimers: true }),
    openPage({ keepalive: 2, freezeTimers: true, noWorker: true }),
  ]);
  assert.equal(await withWorker.evaluate(() => window.client.timerInWorker), true);
  assert.equal(await control.evaluate(() => window.client.timerInWorker), false);
  await control.waitForFunction(() => window.closes > 0, null, { timeout: 15_000 });
  // By now (> 3 s of idle) the Worker-timed client has pinged several times.
  await withWorker.waitForTimeout(3_000);
  assert.equal(await withWorker.evaluate(() => window.closes), 0);
  assert.equal(await withWorker.evaluate(() => window.client.connected), true);
  await withWorker.close();
  await control.close();
});
