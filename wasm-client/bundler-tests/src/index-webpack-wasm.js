// Entry for webpack 5's own WebAssembly/ESM integration (`aviary-mqtt/bundler`, the
// wasm-bindgen `bundler` build): webpack instantiates the .wasm, `init()` is a no-op.
import init, { connect } from "aviary-mqtt/bundler";
import { run } from "./app.js";

run({ init, connect });
