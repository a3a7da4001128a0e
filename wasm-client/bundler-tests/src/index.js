// Entry for Vite and webpack 5: nothing bundler-specific, `init()` finds the .wasm itself
// (the glue's `new URL("aviary_mqtt_bg.wasm", import.meta.url)`, which both bundlers emit).
import init, { connect } from "aviary-mqtt";
import { run } from "./app.js";

run({ init, connect });
