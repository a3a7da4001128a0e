// `aviary-mqtt/compat` in Node: MQTT.js's `connect` and friends on the `nodejs` build (which
// loads its wasm synchronously); payloads are real Buffers. Node 20 has no global WebSocket:
// set `globalThis.WebSocket` (from the `ws` package) first.
import { createClient } from "./index.mjs";
import { bindCompat } from "../compat/index.js";

const mqtt = bindCompat(() => createClient);
export default mqtt;
export const { connect, connectAsync, MqttClient, Client } = mqtt;
export { MqttPayload } from "../compat/index.js";
