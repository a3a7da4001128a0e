// What aviary-mqtt's wasm engine reports, as MQTT.js shows it: MQTT 5 properties from the
// engine's field lists (wasm-client/src/fields.rs writes them) and `MqttError`s from its error
// codes (wasm-client/src/js_api/sink.rs).

import { USER } from "./fields.js";

const text = new TextDecoder();

/** `ErrorKind` of the engine, by number (wasm-client/src/engine/error.rs). */
const CODES = ["CONNECTION_REFUSED", "CONNECT_TIMEOUT", "KEEPALIVE_TIMEOUT", "CONNECTION_LOST",
  "SERVER_DISCONNECT", "PROTOCOL_ERROR", "PUBLISH_FAILED", "SUBSCRIBE_FAILED",
  "UNSUBSCRIBE_FAILED", "QUEUE_FULL", "CLIENT_ENDED", "INVALID_ARGUMENT"];
/** MQTT 5 properties the engine reports: name and kind (0 number, 1 flag, 2 string, 3 bytes). */
const PROPERTIES = {
  0x01: ["payloadFormatIndicator", 1], 0x02: ["messageExpiryInterval", 0],
  0x03: ["contentType", 2], 0x08: ["responseTopic", 2], 0x09: ["correlationData", 3],
  0x0b: ["subscriptionIdentifier", 0], 0x11: ["sessionExpiryInterval", 0],
  0x12: ["assignedClientIdentifier", 2], 0x13: ["serverKeepAlive", 0],
  0x15: ["authenticationMethod", 2], 0x16: ["authenticationData", 3],
  0x1f: ["reasonString", 2], 0x21: ["receiveMaximum", 0], 0x22: ["topicAliasMaximum", 0],
  0x24: ["maximumQoS", 0], 0x25: ["retainAvailable", 1], 0x27: ["maximumPacketSize", 0],
  0x28: ["wildcardSubscriptionAvailable", 1], 0x2a: ["sharedSubscriptionAvailable", 1],
};

/** MQTT 5 properties from the engine's field list, as MQTT.js shows them. */
export function properties(list) {
  const out = {};
  const view = new DataView(list.buffer, list.byteOffset, list.byteLength);
  let at = 0;
  const num = () => view.getUint32((at += 4) - 4);
  const raw = () => {
    const n = num();
    return list.subarray(at, (at += n));
  };
  while (at < list.length) {
    const id = list[at++];
    if (id === USER) {
      // Repeated names become arrays, as in MQTT.js.
      const map = (out.userProperties ??= {});
      const k = text.decode(raw()), v = text.decode(raw()), old = map[k];
      map[k] = old === undefined ? v : Array.isArray(old) ? (old.push(v), old) : [old, v];
      continue;
    }
    const [name, kind] = PROPERTIES[id];
    const v = kind < 2 ? (kind ? num() !== 0 : num()) : kind === 2 ? text.decode(raw()) : raw().slice();
    // Only subscription identifiers repeat: one is a number, several an array.
    out[name] = out[name] === undefined ? v : [].concat(out[name], v);
  }
  return out;
}

/** An `Error` named "MqttError" with the engine's `code` and, if any, `reasonCode`. */
export function mqttError(code, message) {
  const e = new Error(message);
  e.name = "MqttError";
  e.code = CODES[code & 255];
  if (code >> 8) e.reasonCode = (code >> 8) - 1;
  return e;
}
