// MQTT 5 enhanced authentication in headless Chromium: the page computes SCRAM-SHA-512 with
// WebCrypto (async PBKDF2 and HMAC) in the `authenticate` hook, against the real gateway and
// a password file written by `aviary passwd`; the broker's signature is checked in the hook.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGatewayWithUsers } from "../lib/gateway.mjs";
import { serveStatic, launchChromium } from "../lib/browser.mjs";

let gw, server, browser, page;

before(async () => {
  gw = await startGatewayWithUsers({ alice: "wonder-land", bob: "builder" });
  server = await serveStatic();
  browser = await launchChromium();
  page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`${server.origin}/page/scram.html`);
  await page.waitForFunction(() => document.getElementById("status").textContent === "ready",
    null, { timeout: 15_000 });
});

after(async () => {
  await browser?.close();
  server?.close();
  await gw?.stop();
});

const login = (user, password, options) =>
  page.evaluate(([url, user, password, options]) => window.scramLogin(url, user, password, options),
    [gw.wsUrl, user, password, options ?? {}]);

test("SCRAM-SHA-512 signs in, the broker proves itself, and messages flow", async () => {
  const r = await login("alice", "wonder-land");
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.echoed, "hello from alice");
  // One challenge answered, then the CONNACK's server signature, checked.
  assert.deepEqual(r.seen.map((s) => [s.method, s.done]), [["SCRAM-SHA-512", false], ["SCRAM-SHA-512", true]]);
  assert.match(r.seen[0].text, /^r=[^,]+,s=[A-Za-z0-9+/=]+,i=101$/);
  assert.match(r.seen[1].text, /^v=/);
});

test("a wrong password is refused with 0x87 after the challenge", async () => {
  const r = await login("bob", "not-bob");
  assert.equal(r.ok, false);
  assert.equal(r.code, "CONNECTION_REFUSED");
  assert.equal(r.reasonCode, 0x87);
  assert.equal(r.seen.length, 1, "the challenge was answered, no CONNACK data");
});

test("a broker signature the hook rejects ends the client and rejects connect()", async () => {
  const r = await login("bob", "builder", { forgeSignature: true });
  assert.equal(r.ok, false, JSON.stringify(r));
  assert.equal(r.code, "CONNECTION_REFUSED");
  assert.equal(r.seen.length, 1);
});

test("a hook that gives no answer to the challenge fails the attempt and rejects connect()", async () => {
  const r = await login("alice", "wonder-land", { failChallenge: true });
  assert.equal(r.ok, false, JSON.stringify(r));
  assert.equal(r.code, "CONNECTION_REFUSED");
  assert.equal(r.reasonCode, 0x87);
});
