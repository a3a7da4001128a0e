// The seed documents' MQTT.js snippets (/work/shared/seed-snippets.md, `../shared/` from the
// repository root), read at test time and never copied into the project, made runnable as
// that file's header allows: the `require('mqtt')` line goes (the page supplies `mqtt` from
// `aviary-mqtt/compat`, the one line a user changes), and the broker URL becomes the
// identifier `BROKER_URL`, which the page binds to the gateway's loopback ws:// address.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** wasm-client/npm-tests/lib → the repository root. */
const REPO = fileURLToPath(new URL("../../..", import.meta.url));
export const SEEDS_PATH = resolve(join(REPO, "..", "shared", "seed-snippets.md"));

/** `{ heading: code }` for every ```js block under a `## heading`. */
export function readSeeds() {
  if (!existsSync(SEEDS_PATH)) {
    throw new Error(`the seed snippets are missing: expected ${SEEDS_PATH} (../shared/seed-snippets.md ` +
      `from the repository root ${REPO}); the compat tests run the seed documents' code from there`);
  }
  const text = readFileSync(SEEDS_PATH, "utf8");
  const seeds = {};
  for (const section of text.split(/^## /m).slice(1)) {
    const heading = section.slice(0, section.indexOf("\n")).trim();
    const code = section.match(/```js\n([\s\S]*?)```/);
    if (code) seeds[heading] = code[1];
  }
  return seeds;
}

/** The snippet under a heading starting with `prefix`; fails clearly if there is none. */
export function seed(seeds, prefix) {
  const heading = Object.keys(seeds).find((h) => h.startsWith(prefix));
  if (!heading) throw new Error(`no snippet "${prefix}…" in ${SEEDS_PATH} (found: ${Object.keys(seeds).join(", ")})`);
  return runnable(seeds[heading]);
}

/** The edits the seed file's header allows, and nothing else. */
export function runnable(code) {
  let out = code
    .replace(/(?:const|let|var)\s+mqtt\s*=\s*require\(\s*['"]mqtt['"]\s*\);?/, "")
    .replace(/(['"`])mqtts?:\/\/[^'"`]*\1/g, "BROKER_URL");
  if (!out.includes("BROKER_URL")) throw new Error(`no broker URL to replace in:\n${code}`);
  // One snippet lost its line breaks in the source ("one line in the source"), which turns it
  // all into one comment. Put them back where its comments end: before every `//` (the URL,
  // the only other `//`, is gone by now) and before each statement that follows a comment.
  if (out.trim().startsWith("//") && !out.trim().includes("\n")) {
    out = out.replace(/\/\//g, "\n//").replace(/(var client|client\.on\()/g, "\n$1");
  }
  return out;
}
