// `aviary-mqtt/compat/bundler`: MQTT.js's `connect` and friends on the bundler build, whose
// .wasm the bundler instantiates (webpack `experiments.asyncWebAssembly`) before this runs.
import { createClient } from "./aviary_mqtt.js";
import { bindCompat } from "../compat/index.js";

const mqtt = bindCompat(() => createClient);
export default mqtt;
export const { connect, connectAsync, MqttClient, Client } = mqtt;
export { MqttPayload } from "../compat/index.js";
