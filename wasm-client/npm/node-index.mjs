// Node entry point: the `nodejs` build (CommonJS, loads its wasm synchronously), re-exported as
// ES modules with a no-op default `init` so code written for the browser build runs unchanged.
// Node 20 has no global WebSocket: set `globalThis.WebSocket` (from the `ws` package) first.
import wasm from "./aviary_mqtt.js";

export const { connect, MqttClient } = wasm;

/** Nothing to initialise in Node; kept so `await init()` works everywhere. */
export default async function init() {}
