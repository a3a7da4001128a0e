// webpack 5 build of the app, with no wasm configuration: webpack 5's asset modules emit the
// .wasm the glue names with `new URL(…, import.meta.url)`.
import webpack from "webpack";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { writePage } from "./page.mjs";

const ENTRY = fileURLToPath(new URL("../src/index.js", import.meta.url));

export async function build(outDir) {
  await rm(outDir, { recursive: true, force: true });
  const stats = await new Promise((resolve, reject) => {
    webpack({
      mode: "production",
      entry: ENTRY,
      output: { path: outDir, filename: "main.js" },
    }, (err, stats) => (err ? reject(err) : resolve(stats)));
  });
  if (stats.hasErrors()) throw new Error(stats.toString("errors-only"));
  await writePage(outDir, "main.js", { module: false });
}
