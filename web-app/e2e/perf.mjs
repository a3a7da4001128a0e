// Measures the web app under load: N location messages per second (default 1,000, from 100
// pets at 10 Hz, QoS 0, over TCP with MQTT.js) for D seconds, in headless Chromium. Prints the
// frame rate (requestAnimationFrame), long tasks, and the main thread's busy time from Chrome's
// own counters (CDP Performance.getMetrics: TaskDuration, ScriptDuration, LayoutDuration, ...).
//
// Usage: node perf.mjs [RATE] [SECONDS] [PETS]   (after `cargo xtask web` and a gateway build)
// Issue 14's target, 1,000 pets at 1 Hz: node perf.mjs 1000 10 1000
import mqtt from "mqtt";
import { artifact, connectTracker, launchBrowser, offset, startGateway } from "./lib.mjs";

const RATE = Number(process.argv[2] ?? 1000);
const SECONDS = Number(process.argv[3] ?? 10);
const PETS = Number(process.argv[4] ?? 100);
const CENTER = [52.3676, 4.9041];

const gateway = await startGateway();
const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  await page.goto(gateway.url);
  await page.waitForSelector('.conn[data-state="connected"]', { timeout: 20_000 });

  // Every pet online, then one fix each, so the map has them all before the clock starts.
  const publisher = await connectTracker(gateway.mqtt, "perf");
  const pets = Array.from({ length: PETS }, (_, i) => ({
    id: `p${i + 1}`,
    pos: offset(...CENTER, (Math.random() - 0.5) * 3000, (Math.random() - 0.5) * 4000),
  }));
  for (const pet of pets) {
    await publisher.publish(`pets/${pet.id}/status`, '{"online":true}', { retain: true });
    const [lat, lng] = pet.pos;
    await publisher.publish(`pets/${pet.id}/location`, JSON.stringify({ lat, lng, accuracy: 10, timestamp: Date.now() }));
  }
  // Pets are drawn on a canvas: the map element counts the pets its last frame placed.
  await page.waitForFunction((n) => Number(document.querySelector("#map")?.dataset.pets ?? 0) >= n, PETS, {
    timeout: 60_000,
  });
  await page.waitForTimeout(1_000);

  // In the page: count frames and long tasks from now on.
  await page.evaluate(() => {
    window.__perf = { frames: 0, longTasks: 0, longTaskMs: 0, worstFrame: 0 };
    let last = performance.now();
    const tick = (t) => {
      window.__perf.frames += 1;
      window.__perf.worstFrame = Math.max(window.__perf.worstFrame, t - last);
      last = t;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.__perf.longTasks += 1;
        window.__perf.longTaskMs += e.duration;
      }
    }).observe({ type: "longtask", buffered: false });
  });
  const metrics = async () =>
    Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  const profile = Boolean(process.env.PROFILE);
  if (profile) {
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.start");
  }
  const drawsBefore = await page.evaluate(() => window.aviaryDraws ?? 0);
  const before = await metrics();
  const started = performance.now();

  // Publish RATE messages a second in 10 ms ticks, round-robin over the pets.
  const client = publisher.client;
  let sent = 0;
  let next = 0;
  await new Promise((done) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      if (elapsed >= SECONDS * 1000) {
        clearInterval(timer);
        done();
        return;
      }
      const due = Math.floor((elapsed / 1000) * RATE);
      while (sent < due) {
        const pet = pets[next];
        next = (next + 1) % pets.length;
        pet.pos = offset(...pet.pos, (Math.random() - 0.5) * 6, (Math.random() - 0.5) * 6);
        const payload = JSON.stringify({ lat: pet.pos[0], lng: pet.pos[1], accuracy: 10, timestamp: Date.now() });
        client.publish(`pets/${pet.id}/location`, payload, { qos: 0 });
        sent += 1;
      }
    }, 10);
  });
  const wall = (performance.now() - started) / 1000;
  const after = await metrics();
  if (profile) printProfile((await cdp.send("Profiler.stop")).profile);
  const draws = (await page.evaluate(() => window.aviaryDraws ?? 0)) - drawsBefore;
  const rateShown = await page.getAttribute(".rate", "data-rate");
  const drawn = await page.evaluate(() => ({ ...document.querySelector("#map").dataset }));
  const perf = await page.evaluate(() => window.__perf);
  await page.screenshot({ path: artifact("perf.png") });
  const delta = (k) => (after[k] ?? 0) - (before[k] ?? 0);
  const pct = (k) => ((100 * delta(k)) / wall).toFixed(1);
  console.log(`published ${sent} location messages in ${wall.toFixed(1)} s (${(sent / wall).toFixed(0)}/s) for ${PETS} pets`);
  console.log(`app's own rate counter at the end: ${rateShown} msg/s`);
  console.log(`last frame: ${drawn.pets} pets placed, ${drawn.markers} markers and ${drawn.clusters} clusters drawn; ${await page.$$eval(".pet-row", (r) => r.length)} list rows in the DOM`);
  console.log(`frames: ${perf.frames} in ${wall.toFixed(1)} s = ${(perf.frames / wall).toFixed(1)} fps; worst frame gap ${perf.worstFrame.toFixed(0)} ms`);
  // A pass runs in each frame where a pet moved or changed; it repaints only the areas of markers
  // whose pixels changed (so a pass may paint nothing), or everything after the view moved.
  console.log(`marker draw passes: ${draws} = ${(draws / wall).toFixed(1)} per second`);
  console.log(`long tasks (>50 ms): ${perf.longTasks}, ${perf.longTaskMs.toFixed(0)} ms in total`);
  console.log(`main thread busy (TaskDuration): ${pct("TaskDuration")}% of wall time; script ${pct("ScriptDuration")}%, layout ${pct("LayoutDuration")}%, style ${pct("RecalcStyleDuration")}%`);
  console.log(`JS heap used at the end: ${((after.JSHeapUsedSize ?? 0) / 1048576).toFixed(1)} MiB`);
  await publisher.end();
} finally {
  await browser.close();
  await gateway.stop();
}

/** With PROFILE=1: the 25 functions with the most self time (CDP's sampling profiler). */
function printProfile(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    const key = `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0) / 1000);
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`profile: ${total.toFixed(0)} ms sampled`);
  for (const [k, ms] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`  ${ms.toFixed(0).padStart(6)} ms  ${k}`);
  }
}
