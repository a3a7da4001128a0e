// The map at scale, end to end: 10,000 pets from one MQTT.js publisher. At low zoom the map
// draws grid clusters instead of 10,000 markers, and zoomed in it draws markers again; the
// panel's list keeps only a window of rows in the DOM however long it is; the search box finds
// a pet by name and by id. What the canvases draw is read from the map element's counts
// (`data-pets`, `data-markers`, `data-clusters`) and `window.aviaryPet`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  artifact,
  connectTracker,
  launchBrowser,
  offset,
  openConnectedMap,
  startGateway,
} from "../lib.mjs";

const PETS = 10_000;
const CENTER = [52.3676, 4.9041];
/** Pets with names (retained in their status), to search for. */
const NAMED = { 4321: "Biscuit", 77: "Rex" };
const SEARCH = "input.pet-search";

let gateway;
let browser;
let page;
let publisher;

before(async () => {
  gateway = await startGateway();
  browser = await launchBrowser();
  page = await openConnectedMap(browser, gateway);
  publisher = await connectTracker(gateway.mqtt, "scale");
  for (const [id, name] of Object.entries(NAMED)) {
    await publisher.publish(`pets/${id}/status`, JSON.stringify({ online: true, name }), { retain: true });
  }
  // One fix per pet, spread over about 20 km by 20 km, in bursts of 500.
  for (let first = 1; first <= PETS; first += 500) {
    const sends = [];
    for (let i = first; i < first + 500 && i <= PETS; i += 1) {
      const [lat, lng] = offset(...CENTER, (Math.random() - 0.5) * 20_000, (Math.random() - 0.5) * 20_000);
      const payload = JSON.stringify({ lat, lng, accuracy: 10, timestamp: Date.now() });
      sends.push(publisher.client.publishAsync(`pets/${i}/location`, payload, { qos: 0 }));
    }
    await Promise.all(sends);
  }
  await page.waitForFunction((n) => Number(document.querySelector("#map")?.dataset.pets) >= n, PETS, {
    timeout: 60_000,
    polling: 250,
  });
});

after(async () => {
  await publisher?.end().catch(() => {});
  await browser?.close();
  await gateway?.stop();
});

/** The map element's counts. */
async function counts() {
  return page.evaluate(() => {
    const d = document.querySelector("#map").dataset;
    return { pets: Number(d.pets), markers: Number(d.markers), clusters: Number(d.clusters) };
  });
}

/** The ids of the rows in the DOM. */
async function rowIds() {
  return page.$$eval(".pet-row", (rows) => rows.map((r) => r.dataset.petId));
}

test("at low zoom 10,000 pets are drawn as clusters, a click on one zooms in, and zoomed in they are markers", async () => {
  await page.waitForFunction(() => Number(document.querySelector("#map").dataset.clusters) > 0, null, {
    timeout: 10_000,
  });
  const low = await counts();
  assert.equal(low.pets, PETS);
  assert.ok(low.clusters > 0 && low.markers < PETS / 10, `low zoom: ${JSON.stringify(low)}`);
  await page.screenshot({ path: artifact("scale-clusters.png") });
  // A click on a cluster zooms in on its pets.
  const zoom = await page.evaluate(() => window.aviaryMap.getZoom());
  const [bubble] = await page.evaluate(() => window.aviaryClusters());
  const origin = await page.$eval("#map", (el) => el.getBoundingClientRect().toJSON());
  await page.mouse.click(origin.left + bubble.x, origin.top + bubble.y);
  // Zoomed in, and Leaflet's zoom animation over (its end would undo a view set during it).
  await page.waitForFunction(
    (zoom) => window.aviaryMap.getZoom() > zoom && !document.querySelector(".leaflet-zoom-anim"),
    zoom,
    { timeout: 10_000 },
  );
  // Zoomed in on one pet (about 1.4 km across), few enough are in view to draw each.
  await page.evaluate(() => {
    const { lat, lng } = window.aviaryPet("1");
    window.aviaryMap.setView([lat, lng], 16, { animate: false });
  });
  await page.waitForFunction(
    () => {
      const d = document.querySelector("#map").dataset;
      return window.aviaryPet("1").drawn && Number(d.clusters) === 0 && Number(d.markers) > 0;
    },
    null,
    { timeout: 10_000 },
  );
  const high = await counts();
  assert.ok(high.markers < PETS, `zoomed in: ${JSON.stringify(high)}`);
});

test("the list keeps only a window of its 10,000 rows in the DOM", async () => {
  await page.waitForSelector(`.pet-list[data-total="${PETS}"]`, { timeout: 10_000 });
  const first = await rowIds();
  assert.ok(first.length > 0 && first.length <= 100, `${first.length} rows in the DOM`);
  assert.equal(first[0], "1");
  // Scrolled to the end, the last pets are rendered, and still only a window of rows.
  await page.$eval(".pet-scroll", (el) => {
    el.scrollTop = el.scrollHeight;
  });
  await page.waitForSelector(`.pet-row[data-pet-id="${PETS}"]`, { timeout: 10_000 });
  const last = await rowIds();
  assert.ok(last.length <= 100, `${last.length} rows in the DOM`);
  assert.ok(!last.includes("1"), "the first row left the DOM");
});

test("the search box finds a pet by name, and Enter selects it", async () => {
  await page.fill(SEARCH, "bisc");
  await page.waitForFunction(
    () => [...document.querySelectorAll(".pet-row")].map((r) => r.dataset.petId).join() === "4321",
    null,
    { timeout: 10_000 },
  );
  assert.match(await page.textContent('.pet-row[data-pet-id="4321"] .pet-name'), /Biscuit/);
  await page.press(SEARCH, "Enter");
  await page.waitForSelector('.pet-row[data-pet-id="4321"][data-selected="true"]', { timeout: 10_000 });
  await page.waitForFunction(() => window.aviaryPet?.("4321")?.selected === true, null, { timeout: 10_000 });
});

test("the search box finds a pet by id, and an empty box lists every pet again", async () => {
  await page.fill(SEARCH, "9876");
  await page.waitForFunction(
    () => [...document.querySelectorAll(".pet-row")].map((r) => r.dataset.petId).join() === "9876",
    null,
    { timeout: 10_000 },
  );
  assert.equal(await page.getAttribute(".search-count", "data-matches"), "1");
  // Part of an id lists every pet whose id contains it, the exact match first.
  await page.fill(SEARCH, "77");
  await page.waitForFunction(
    () => document.querySelector(".pet-row")?.dataset.petId === "77",
    null,
    { timeout: 10_000 },
  );
  assert.ok(Number(await page.getAttribute(".search-count", "data-matches")) > 1);
  await page.fill(SEARCH, "");
  await page.waitForSelector(`.pet-list[data-total="${PETS}"]`, { timeout: 10_000 });
});
