// A static file server for one build's output folder, on 127.0.0.1 and an ephemeral port, with
// the content types a browser needs (`application/wasm` for streaming instantiation).
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

const TYPES = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".wasm": "application/wasm",
};

/** Serves `root`, `/` being index.html. Resolves with `{ origin, close }`. */
export function serveDir(root) {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = path === "/" ? "index.html" : normalize(path).replace(/^(\.\.[/\\])+|^\/+/g, "");
    try {
      const body = await readFile(join(root, file));
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    const origin = `http://127.0.0.1:${server.address().port}`;
    resolve({ origin, close: () => new Promise((done) => server.close(done)) });
  }));
}
