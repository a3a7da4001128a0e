// Message payloads as MQTT.js code expects them: `message.toString()` decodes UTF-8, so
// `JSON.parse(message.toString())` and `${message}` keep working. In Node that is a real
// Buffer; in browsers a Uint8Array subclass with a Buffer-like `toString`. Both wrap the
// bytes the client delivered, without copying.

const utf8 = new TextDecoder();

/** A Uint8Array whose `toString()` decodes like Buffer's (utf8, hex, base64, latin1). */
export class MqttPayload extends Uint8Array {
  toString(encoding = "utf8", start = 0, end = this.length) {
    const bytes = this.subarray(start, end);
    switch (String(encoding).toLowerCase()) {
      case "utf8":
      case "utf-8":
        return utf8.decode(bytes);
      case "hex":
        return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      case "base64":
        return btoa(latin1(bytes));
      case "latin1":
      case "binary":
      case "ascii":
        return latin1(bytes);
      default:
        throw new TypeError(`unknown encoding: ${encoding}`);
    }
  }

  /** Buffer's JSON form, so logging a payload looks the same as with MQTT.js in Node. */
  toJSON() {
    return { type: "Buffer", data: Array.from(this) };
  }
}

function latin1(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return s;
}

// Bundlers may inject a Buffer polyfill into browser code; only Node's is used (`process`).
const NodeBuffer =
  typeof process === "object" && process.versions?.node && typeof globalThis.Buffer === "function"
    ? globalThis.Buffer
    : null;

/** Wraps the bytes of a delivered message (a Uint8Array) as a Buffer or an MqttPayload. */
export function toPayload(bytes) {
  return NodeBuffer
    ? NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new MqttPayload(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
