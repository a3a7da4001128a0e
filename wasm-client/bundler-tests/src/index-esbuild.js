// Entry for esbuild, which does not follow `new URL(…, import.meta.url)`: importing the .wasm
// with the `file` loader (`--loader:.wasm=file`) emits it and gives its URL to `init()`.
import init, { connect } from "aviary-mqtt";
import wasm from "aviary-mqtt/web/aviary_mqtt_bg.wasm";
import { run } from "./app.js";

run({ init, connect }, { module_or_path: wasm });
