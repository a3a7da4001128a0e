// `aviary-mqtt/compat` for browsers (the `web` build): MQTT.js's `connect` and friends, which
// load the .wasm next to this file on first use, so no `await init()` is needed.
import init, { createClient } from "./aviary_mqtt.js";
import { bindCompat } from "../compat/index.js";

let loading = null;

/** `createClient` once the .wasm is loaded; the first call starts loading it. */
function load() {
  if (loading === true) return createClient;
  loading ??= init().then(() => {
    loading = true;
    return createClient;
  });
  return loading;
}

const mqtt = bindCompat(load);
export default mqtt;
export const { connect, connectAsync, MqttClient, Client } = mqtt;
export { MqttPayload } from "../compat/index.js";
