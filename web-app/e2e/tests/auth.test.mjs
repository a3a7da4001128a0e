// Signing in to the map of `aviary --demo`: the gateway writes the demo users and ACL, its 25
// simulated trackers sign in as tracker-pet-N, and the map in headless Chromium must show
// each owner exactly their own pets (alice 1–12, bob 13–25), nobody's before signing in, and
// nobody's after a wrong password or signing out. Pets are drawn on a canvas: the pets shown
// are the ones the map reports through `aviaryPetIds()` (see web-app/src/app/map_probe.rs).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { artifact, launchBrowser, startGateway } from "../lib.mjs";

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));
const ALICE = range(1, 12);
const BOB = range(13, 25);
const FORM = "form.signin";

let gateway;
let browser;
let page;

before(async () => {
  gateway = await startGateway(["--demo"]);
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on("pageerror", (err) => console.error("page error:", err));
  await page.goto(gateway.url);
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

async function signIn(username, password) {
  await page.fill(`${FORM} input[name="username"]`, username);
  await page.fill(`${FORM} input[name="password"]`, password);
  await page.click(`${FORM} button[type="submit"]`);
}

/** The pet ids of the markers on the map, sorted. */
async function shownPets() {
  const ids = await page.evaluate(() => window.aviaryPetIds?.() ?? []);
  return ids.sort((a, b) => Number(a) - Number(b));
}

/**
 * Waits (at most `timeout` ms) until the markers show exactly `want`. Every state seen on the
 * way must be a subset of `want`: one marker of someone else's pet fails at once.
 */
async function expectExactly(want, timeout = 30_000) {
  const result = await page.waitForFunction(
    ({ want }) => {
      const ids = window.aviaryPetIds?.() ?? [];
      const stray = ids.filter((id) => !want.includes(id));
      if (stray.length > 0) return { stray };
      const unique = new Set(ids);
      return unique.size === want.length && ids.length === want.length ? { done: true } : false;
    },
    { want },
    { timeout, polling: 100 },
  );
  const { stray } = await result.jsonValue();
  assert.equal(stray, undefined, `markers of someone else's pets: ${stray}`);
  assert.deepEqual(await shownPets(), want);
}

/** Waits until `more` messages have arrived since the call (the status bar counts them). */
async function waitForMoreMessages(more, timeout = 20_000) {
  const count = () => Number(/(\d+) messages/.exec(document.querySelector(".rate")?.title)?.[1] ?? 0);
  const start = await page.evaluate(count);
  await page.waitForFunction(
    (goal) => Number(/(\d+) messages/.exec(document.querySelector(".rate")?.title)?.[1] ?? 0) >= goal,
    start + more,
    { timeout, polling: 200 },
  );
}

/** Nothing the user typed is kept where it could leak: the URL, or the page's storage. */
async function assertCredentialsNotKept(password) {
  assert.ok(!page.url().includes(password), `the password is in the URL ${page.url()}`);
  const stored = await page.evaluate(() =>
    [localStorage, sessionStorage].flatMap((s) =>
      Array.from({ length: s.length }, (_, i) => `${s.key(i)}=${s.getItem(s.key(i))}`),
    ),
  );
  assert.ok(!stored.some((entry) => entry.includes(password)), `stored: ${stored}`);
}

test("the demo gateway asks for a user, and the map asks before showing any pet", async () => {
  const config = await (await fetch(`${gateway.url}config.json`)).json();
  assert.equal(config.auth_required, true, "config.json says auth_required");
  await page.waitForSelector(`${FORM} input[name="username"]`, { timeout: 20_000 });
  assert.equal(await page.getAttribute(`${FORM} input[name="password"]`, "type"), "password");
  await page.waitForSelector('.conn[data-state="idle"]');
  assert.deepEqual(await shownPets(), []);
  await page.screenshot({ path: artifact("sign-in.png") });
});

test("a wrong password is refused with a message on the form, and no pet shows", async () => {
  await signIn("alice", "not-alice's-password");
  await page.waitForSelector(`${FORM} .signin-error`, { timeout: 15_000 });
  assert.match(await page.textContent(`${FORM} .signin-error`), /wrong username or password/i);
  await page.waitForSelector(`${FORM} button[type="submit"]:not([disabled])`);
  assert.deepEqual(await shownPets(), []);
  assert.equal(await page.$$eval(".pet-row", (rows) => rows.length), 0);
});

test("alice sees exactly her pets, 1 to 12", async () => {
  await signIn("alice", "alice-demo");
  await page.waitForSelector(FORM, { state: "detached", timeout: 15_000 });
  await page.waitForSelector('.conn[data-state="connected"]');
  assert.equal(await page.textContent(".user-name"), "alice");
  await expectExactly(ALICE);
  // Live fixes keep coming, and still only hers.
  await waitForMoreMessages(ALICE.length);
  assert.deepEqual(await shownPets(), ALICE);
  const rows = await page.$$eval(".pet-row", (rows) => rows.map((r) => r.dataset.petId));
  assert.ok(rows.every((id) => ALICE.includes(id)), `panel rows ${rows}`);
  await assertCredentialsNotKept("alice-demo");
  await page.screenshot({ path: artifact("signed-in-alice.png") });
});

test("signing out clears the map and shows the form again", async () => {
  await page.click('button[name="sign-out"]');
  await page.waitForSelector(`${FORM} input[name="username"]`, { timeout: 10_000 });
  await page.waitForFunction(() => (window.aviaryPetIds?.() ?? []).length === 0, null, {
    timeout: 10_000,
  });
  assert.equal(await page.$$eval(".pet-row", (rows) => rows.length), 0);
  await page.waitForSelector('.conn[data-state="idle"]');
  assert.equal(await page.$(".user-name"), null);
});

test("bob sees exactly his pets, 13 to 25", async () => {
  await signIn("bob", "bob-demo");
  await page.waitForSelector(FORM, { state: "detached", timeout: 15_000 });
  await expectExactly(BOB);
  await waitForMoreMessages(BOB.length);
  assert.deepEqual(await shownPets(), BOB);
  await assertCredentialsNotKept("bob-demo");
});
