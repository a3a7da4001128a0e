// Builds the app with Vite, esbuild and webpack 5 from the packed aviary-mqtt tarball
// (installed by `cargo xtask test`), checks each build emitted the .wasm, serves it and runs
// it in headless Chromium against the real gateway (AVIARY_BIN): connect, subscribe, publish,
// receive. Every wait is bounded.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
// The npm package tests' gateway launcher (no dependencies): one way to start it everywhere.
import { startGateway } from "../../npm-tests/lib/gateway.mjs";
import { serveDir } from "../lib/serve.mjs";

const DIST = fileURLToPath(new URL("../dist", import.meta.url));
// `webpack-wasm` is webpack 5 on `aviary-mqtt/bundler` (its WebAssembly/ESM integration).
const BUNDLERS = ["vite", "esbuild", "webpack", "webpack-wasm"];

let gw, browser;

before(async () => {
  gw = await startGateway();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  await gw?.stop();
});

/** Every file under `dir`, as paths relative to it. */
async function files(dir) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1));
}

for (const name of BUNDLERS) {
  test(`${name}: the built app emits the .wasm and talks to the gateway`, async () => {
    const outDir = join(DIST, name);
    const { build } = await import(`../bundlers/${name}.mjs`);
    await build(outDir);
    const built = await files(outDir);
    assert.ok(built.some((f) => f.endsWith(".wasm")), `no .wasm in ${name}'s output: ${built}`);

    const server = await serveDir(outDir);
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    try {
      await page.goto(`${server.origin}/?ws=${encodeURIComponent(gw.wsUrl)}`);
      // The app writes "ok" or "failed: …"; either ends the wait.
      await page.waitForFunction(
        () => document.getElementById("status")?.textContent !== "loading",
        null, { timeout: 20_000 });
      const status = await page.textContent("#status");
      assert.equal(status, "ok", `page errors: ${errors.join("; ")}`);
    } finally {
      await page.close();
      await server.close();
    }
  });
}
