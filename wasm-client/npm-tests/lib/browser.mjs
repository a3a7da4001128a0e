// Headless Chromium (Debian's, driven by playwright-core) and a static server for the test
// pages and the installed package, shared by the Playwright tests.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { join, extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

/**
 * Serves the npm-tests folder (page/, node_modules/), `/` being page/index.html, like any
 * static host. Resolves with `{ origin, close }`.
 */
export function serveStatic() {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = path === "/" ? "page/index.html" : normalize(path).replace(/^\/+/, "");
    try {
      const body = await readFile(join(ROOT, file));
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    resolve({ origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() });
  }));
}

/** Headless Chromium with the flags TOOLCHAIN.md lists (no network besides loopback). */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
