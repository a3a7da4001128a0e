// Writes the app's page next to a bundle that is not Vite's (Vite rewrites index.html itself).
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const PAGE = fileURLToPath(new URL("../index.html", import.meta.url));
const ENTRY = '<script type="module" src="./src/index.js"></script>';

/**
 * Copies index.html into `outDir`, loading `bundle` instead of the source entry: as a module
 * (esbuild's ESM output) or as a classic deferred script (webpack's, whose automatic
 * publicPath reads `document.currentScript`, which module scripts do not set).
 */
export async function writePage(outDir, bundle, { module }) {
  const html = await readFile(PAGE, "utf8");
  const tag = module
    ? `<script type="module" src="./${bundle}"></script>`
    : `<script defer src="./${bundle}"></script>`;
  if (!html.includes(ENTRY)) throw new Error("index.html no longer loads ./src/index.js");
  await writeFile(join(outDir, "index.html"), html.replace(ENTRY, tag));
}
