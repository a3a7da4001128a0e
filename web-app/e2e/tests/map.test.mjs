// The map app end to end: a real gateway, MQTT.js trackers over TCP, the app in headless
// Chromium. State is read from the panel rows' data attributes and, as pets are drawn on
// canvases, from what the map reports (`window.aviaryPet`); positions are checked in pixels
// against Leaflet's own projection (`window.aviaryMap`) and against the canvases' paint.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  artifact,
  connectTracker,
  launchBrowser,
  offset,
  openConnectedMap,
  startGateway,
} from "../lib.mjs";

const PET = "e2e1";
const HOME = [52.3702, 4.8952];
const row = `.pet-row[data-pet-id="${PET}"]`;

let gateway;
let browser;
let page;
let tracker;
const sent = [];

before(async () => {
  gateway = await startGateway();
  browser = await launchBrowser();
  page = await openConnectedMap(browser, gateway);
});

after(async () => {
  tracker?.end().catch(() => {});
  await browser?.close();
  await gateway?.stop();
});

/** Publishes a fix and remembers it. */
async function moveTo(lat, lng) {
  sent.push([lat, lng]);
  await tracker.moveTo(lat, lng);
}

/**
 * Waits until the pet's marker is drawn at (lat, lng), within 3 px, glide included: where the
 * map says it draws the pet (`aviaryPet`) must be where Leaflet puts (lat, lng), and the
 * markers canvas must have paint there.
 */
async function markerAt(lat, lng) {
  await page.waitForFunction(
    ({ id, lat, lng }) => {
      const pet = window.aviaryPet?.(id);
      const map = window.aviaryMap;
      if (!pet || !pet.drawn || !map) return false;
      const want = map.latLngToContainerPoint([lat, lng]);
      if (Math.hypot(pet.x - want.x, pet.y - want.y) >= 3) return false;
      return paintAt("canvas.pet-markers", pet.x, pet.y);
    },
    { id: PET, lat, lng },
    { timeout: 10_000 },
  );
}

/** Installs `paintAt(selector, x, y)` in the page: whether a canvas has paint at (x, y). */
async function installPaintAt() {
  await page.evaluate(() => {
    window.paintAt = (selector, x, y) => {
      const canvas = document.querySelector(selector);
      if (!canvas) return false;
      const dpr = canvas.width / canvas.clientWidth;
      const pixel = canvas.getContext("2d").getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1);
      return pixel.data[3] > 0;
    };
  });
}

/** What the map reports about the pet (`aviaryPet`), or null. */
async function pet() {
  return page.evaluate((id) => window.aviaryPet?.(id) ?? null, PET);
}

/** Waits until the map reports `key` = `value` for the pet. */
async function waitPet(key, value) {
  await page.waitForFunction(
    ({ id, key, value }) => window.aviaryPet?.(id)?.[key] === value,
    { id: PET, key, value },
    { timeout: 10_000 },
  );
}

async function waitAttr(selector, name, value) {
  await page.waitForSelector(`${selector}[data-${name}="${value}"]`, { timeout: 10_000 });
}

test("a tracker's first fix puts its marker on the map, online", async () => {
  tracker = await connectTracker(gateway.mqtt, PET);
  await tracker.online();
  await moveTo(...HOME);
  await installPaintAt();
  await page.waitForFunction((id) => window.aviaryPet?.(id) != null, PET, { timeout: 10_000 });
  await waitAttr(row, "online", "true");
  await waitPet("online", true);
  assert.equal((await pet()).lat, HOME[0]);
  assert.equal((await pet()).lng, HOME[1]);
  await markerAt(...HOME);
});

test("a new fix moves the marker and grows the trail", async () => {
  const next = offset(...HOME, 120, 80);
  await moveTo(...next);
  await waitPet("trailLen", 2);
  assert.equal((await pet()).lat, next[0]);
  await markerAt(...next);
  // The trail is drawn on its canvas: halfway between the two fixes (clear of the marker).
  await page.waitForFunction(
    ([a, b]) => {
      const map = window.aviaryMap;
      const p = map.latLngToContainerPoint([(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]);
      return window.paintAt("canvas.pet-trails", p.x, p.y);
    },
    [HOME, next],
    { timeout: 10_000 },
  );
});

test("clicking the pet's marker on the map selects it", async () => {
  const { x, y } = await pet();
  const origin = await page.$eval("#map", (el) => {
    const box = el.getBoundingClientRect();
    return { left: box.left, top: box.top };
  });
  await page.mouse.click(origin.left + x, origin.top + y);
  await waitAttr(row, "selected", "true");
  await waitPet("selected", true);
});

test("when the tracker's socket dies, its will turns the pet offline", async () => {
  tracker.crash();
  await waitAttr(row, "online", "false");
  await waitPet("online", false);
  assert.match(await page.textContent(`${row} .pet-status`), /offline/);
});

test("a safe zone set in the panel is retained, and leaving it raises an alert", async () => {
  tracker = await connectTracker(gateway.mqtt, PET);
  await tracker.online();
  await waitAttr(row, "online", "true");
  await page.click(row);
  const form = `.fence-editor[data-pet-id="${PET}"]`;
  await page.waitForSelector(form);
  const last = sent[sent.length - 1];
  await page.fill(`${form} input[name="fence-lat"]`, String(last[0]));
  await page.fill(`${form} input[name="fence-lng"]`, String(last[1]));
  await page.fill(`${form} input[name="fence-radius"]`, "100");
  await page.click(`${form} button[name="fence-save"]`);
  await waitAttr(row, "has-fence", "true");
  await waitAttr(row, "outside", "false");
  // The zone is a retained message now: the gateway's REST API shows it.
  const retained = await (
    await fetch(`${gateway.url}api/v1/retained?filter=pets/${PET}/geofence`)
  ).json();
  assert.equal(retained.length, 1);
  assert.equal(JSON.parse(retained[0].payload).radius, 100);

  await moveTo(...offset(...last, 400, 0));
  await page.waitForSelector(`.alert[data-alert-pet="${PET}"]`, { timeout: 10_000 });
  await waitAttr(row, "outside", "true");
  await waitPet("outside", true);
  assert.match(await page.textContent(`.alert[data-alert-pet="${PET}"]`), /left its safe zone/);
});

test("after a reload the trail comes back from the gateway's history", async () => {
  await page.reload();
  await page.waitForSelector('.conn[data-state="connected"]', { timeout: 20_000 });
  await installPaintAt();
  await waitPet("trailLen", sent.length);
  const latest = sent[sent.length - 1];
  assert.equal((await pet()).lat, latest[0]);
  await markerAt(...latest);
  // Status and zone come back as retained messages.
  await waitAttr(row, "online", "true");
  await waitAttr(row, "has-fence", "true");
  await page.waitForSelector(`.alert[data-alert-pet="${PET}"]`, { timeout: 10_000 });
});

test("a screenshot of the map is not blank", async () => {
  // Let the outlines load and any glide finish.
  await page.waitForSelector('#map[data-basemap="loaded"]', { timeout: 10_000 });
  await page.waitForTimeout(1_200);
  const file = artifact("map.png");
  await page.screenshot({ path: file });
  const png = readFileSync(file);
  assert.ok(png.length > 20_000, `screenshot is only ${png.length} bytes`);
  // Count distinct colours over a grid of pixels, decoded by the browser itself.
  const colours = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const canvas = new OffscreenCanvas(img.width, img.height);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const { data } = ctx.getImageData(0, 0, img.width, img.height);
    const seen = new Set();
    for (let i = 0; i < data.length; i += 4 * 97) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return seen.size;
  }, png.toString("base64"));
  assert.ok(colours > 50, `only ${colours} distinct colours: the page looks blank`);
});

test("the connection state shows reconnecting, and offline without a network", async () => {
  await gateway.stop();
  await page.waitForSelector('.conn[data-state="reconnecting"]', { timeout: 15_000 });
  assert.match(await page.textContent(".conn"), /Reconnecting/);
  // The backoff countdown: "Reconnecting in N s", then a smaller N a second or two later.
  // With the gateway down every attempt fails at once and the window doubles (1, 2, 4, 8 s),
  // so a countdown from 3 s or more shows within a few attempts.
  const countdown = () =>
    page.evaluate(() => {
      const m = /Reconnecting in (\d+) s/.exec(document.querySelector(".conn")?.textContent ?? "");
      return m ? Number(m[1]) : null;
    });
  await page.waitForFunction(
    () => {
      const m = /Reconnecting in (\d+) s/.exec(document.querySelector(".conn")?.textContent ?? "");
      return m !== null && Number(m[1]) >= 3;
    },
    null,
    { timeout: 20_000, polling: 100 },
  );
  const from = await countdown();
  assert.ok(from !== null && from >= 2, `countdown read ${from}`);
  assert.match(await page.textContent(".conn"), /Reconnecting in \d+ s/);
  await page.waitForFunction(
    (from) => {
      const m = /Reconnecting in (\d+) s/.exec(document.querySelector(".conn")?.textContent ?? "");
      return m !== null && Number(m[1]) >= 1 && Number(m[1]) < from;
    },
    from,
    { timeout: 3_000, polling: 100 },
  );
  await browser.context.setOffline(true);
  await page.waitForSelector('.conn[data-state="offline"]', { timeout: 10_000 });
  await browser.context.setOffline(false);
  await page.waitForSelector('.conn[data-state="reconnecting"]', { timeout: 10_000 });
});
