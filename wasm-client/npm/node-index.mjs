// Node entry point: the `nodejs` build (CommonJS, loads its wasm synchronously) under the
// package's JavaScript API (`../api.js`), as ES modules with a no-op default `init` so code
// written for the browser build runs unchanged. Node 20 has no global WebSocket: set
// `globalThis.WebSocket` (from the `ws` package) first.
import wasm from "./aviary_mqtt.js";
import { bind } from "../api.js";

export const { connect, createClient, MqttClient } = bind(wasm.Engine);

/** Nothing to initialise in Node; kept so `await init()` works everywhere. */
export default async function init() {}
