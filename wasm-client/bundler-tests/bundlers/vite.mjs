// Vite build of the app, with no configuration at all (no config file, no plugin): Vite emits
// the .wasm the glue names with `new URL(…, import.meta.url)` as an asset.
import { build as viteBuild } from "vite";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

export async function build(outDir) {
  await viteBuild({
    root: ROOT,
    configFile: false,
    logLevel: "warn",
    build: { outDir, emptyOutDir: true },
  });
}
