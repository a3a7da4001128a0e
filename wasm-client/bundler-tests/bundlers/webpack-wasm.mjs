// webpack 5 build of the app on `aviary-mqtt/bundler`, the wasm-bindgen `bundler` build, which
// needs the one line the README shows: `experiments: { asyncWebAssembly: true }`.
import webpack from "webpack";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { writePage } from "./page.mjs";

const ENTRY = fileURLToPath(new URL("../src/index-webpack-wasm.js", import.meta.url));

export async function build(outDir) {
  await rm(outDir, { recursive: true, force: true });
  const stats = await new Promise((resolve, reject) => {
    webpack({
      mode: "production",
      entry: ENTRY,
      output: { path: outDir, filename: "main.js" },
      experiments: { asyncWebAssembly: true }, // the one line
    }, (err, stats) => (err ? reject(err) : resolve(stats)));
  });
  if (stats.hasErrors()) throw new Error(stats.toString("errors-only"));
  await writePage(outDir, "main.js", { module: false });
}
