// esbuild build of the app. The one line of configuration the README shows is the `.wasm`
// loader; the entry imports the .wasm's URL (src/index-esbuild.js).
import * as esbuild from "esbuild";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writePage } from "./page.mjs";

const ENTRY = fileURLToPath(new URL("../src/index-esbuild.js", import.meta.url));

export async function build(outDir) {
  await rm(outDir, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [ENTRY],
    bundle: true,
    format: "esm",
    minify: true,
    outfile: join(outDir, "main.js"),
    logLevel: "warning",
    loader: { ".wasm": "file" }, // the one line
  });
  await writePage(outDir, "main.js", { module: true });
}
