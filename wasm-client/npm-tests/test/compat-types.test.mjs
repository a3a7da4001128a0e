// aviary-mqtt/compat's TypeScript declarations, through the installed package as a user's
// project would resolve them (package.json `exports`, `types` condition): MQTT.js-style code
// in types/compat-usage.ts must type-check under `strict`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TSC = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url));

test("the compat declarations type-check MQTT.js-style code", async () => {
  const args = [TSC, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution",
    "nodenext", "--target", "es2022", "--lib", "es2022,dom", "types/compat-usage.ts"];
  const output = await new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, text: stdout + stderr }));
  });
  assert.equal(output.code, 0, output.text);
});
