// The options side of aviary-mqtt's JavaScript API: checks what the application passes and
// writes it as the engine's field lists (wasm-client/src/fields.rs reads them): an identifier
// byte, then a 4-byte number or a 4-byte length and bytes. A mistake throws a `TypeError`
// naming the option, before anything reaches the engine.

export const MAX32 = 4294967295;
export const utf8 = new TextEncoder();
/** The MQTT 5 User Property identifier. */
export const USER = 0x26;

/** A field list: an identifier byte, then a 4-byte number or a 4-byte length and bytes. */
export class Fields {
  #b = [];

  #u32(n) {
    this.#b.push(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
  }

  #raw(v) {
    this.#u32(v.length);
    for (const x of v) this.#b.push(x);
  }

  num(id, n) {
    if (n === undefined) return;
    this.#b.push(id);
    this.#u32(n);
  }

  flag(id, v) {
    if (v !== undefined) this.num(id, v ? 1 : 0);
  }

  bytes(id, v) {
    if (v === undefined) return;
    this.#b.push(id);
    this.#raw(v);
  }

  str(id, s) {
    if (s !== undefined) this.bytes(id, utf8.encode(s));
  }

  /** A user property: one identifier, then the name and the value. */
  user(id, k, v) {
    this.str(id, k);
    this.#raw(utf8.encode(v));
  }

  done() {
    return new Uint8Array(this.#b);
  }
}

export const isObject = (o) => typeof o === "object" && o !== null;
/** `o[key]`, or undefined when absent or null, or when `o` is no object. */
export const get = (o, key) => (isObject(o) ? o[key] ?? undefined : undefined);
export const fail = (message) => {
  throw new TypeError(message);
};

export function int(o, key, max) {
  const v = get(o, key);
  if (v === undefined || (typeof v === "number" && v >= 0 && v <= max && Number.isInteger(v))) return v;
  fail(`\`${key}\` must be an integer from 0 to ${max}`);
}

export function typed(o, key, type) {
  const v = get(o, key);
  if (v === undefined || typeof v === type) return v;
  fail(`\`${key}\` must be a ${type}`);
}

export const qos = (o) => int(o, "qos", 2) ?? 0;

/** Bytes from a string (UTF-8), a Uint8Array, any other view, an ArrayBuffer or nothing. */
export function bytes(v, what) {
  if (typeof v === "string") return utf8.encode(v);
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v == null) return new Uint8Array(0);
  fail(`${what} must be a string, Uint8Array or ArrayBuffer`);
}

/** `{ key: value | value[] }` as user properties, in order. */
export function users(f, id, o) {
  const map = get(o, "userProperties");
  if (map === undefined) return;
  for (const [k, v] of Object.entries(map)) {
    for (const x of Array.isArray(v) ? v : [v]) {
      if (typeof x !== "string") fail("user property values must be strings");
      f.user(id, k, x);
    }
  }
}

export function messageProperties(f, o, userId) {
  f.flag(0x01, typed(o, "payloadFormatIndicator", "boolean"));
  f.num(0x02, int(o, "messageExpiryInterval", MAX32));
  f.str(0x03, typed(o, "contentType", "string"));
  f.str(0x08, typed(o, "responseTopic", "string"));
  const data = get(o, "correlationData");
  if (data !== undefined) f.bytes(0x09, bytes(data, "correlationData"));
  users(f, userId, o);
}

function connectProperties(f, o) {
  f.num(0x11, int(o, "sessionExpiryInterval", MAX32));
  f.num(0x21, int(o, "receiveMaximum", 65535));
  f.num(0x27, int(o, "maximumPacketSize", MAX32));
  f.num(0x22, int(o, "topicAliasMaximum", 65535));
  f.flag(0x19, typed(o, "requestResponseInformation", "boolean"));
  f.flag(0x17, typed(o, "requestProblemInformation", "boolean"));
  users(f, USER, o);
  f.str(0x15, typed(o, "authenticationMethod", "string"));
  const data = get(o, "authenticationData");
  if (data !== undefined) f.bytes(0x16, bytes(data, "authenticationData"));
}

function will(f, w) {
  const topic = typed(w, "topic", "string") ?? fail("`will.topic` is required");
  f.str(0x90, topic); // the engine checks it is a valid topic name
  f.bytes(0x91, bytes(get(w, "payload"), "will.payload"));
  f.num(0x92, qos(w));
  f.flag(0x93, typed(w, "retain", "boolean"));
  const props = get(w, "properties");
  messageProperties(f, props, 0xa6);
  f.num(0x18, int(props, "willDelayInterval", MAX32));
}

/** The engine's field list for `connect()` options, and the hooks they name. */
export function options(js) {
  const f = new Fields();
  f.str(0x80, typed(js, "clientId", "string"));
  const version = int(js, "protocolVersion", 5);
  if (version !== undefined && version !== 4 && version !== 5) fail("`protocolVersion` must be 4 or 5");
  f.num(0x81, version);
  const cleanStart = typed(js, "cleanStart", "boolean");
  f.flag(0x82, cleanStart ?? typed(js, "clean", "boolean"));
  f.num(0x83, int(js, "keepalive", 65535));
  f.str(0x84, typed(js, "username", "string"));
  const password = get(js, "password");
  if (password !== undefined) f.bytes(0x85, bytes(password, "password"));
  const w = get(js, "will");
  if (w !== undefined) will(f, w);
  const props = get(js, "properties");
  if (props !== undefined) connectProperties(f, props);
  f.num(0x86, int(js, "connectTimeout", MAX32));
  f.num(0x87, int(js, "reconnectPeriod", MAX32));
  f.num(0x88, int(js, "reconnectMaxPeriod", MAX32));
  f.flag(0x89, typed(js, "resubscribe", "boolean"));
  const queue = get(js, "offlineQueue");
  f.num(0x8a, int(queue, "maxMessages", MAX32));
  f.num(0x8b, int(queue, "maxBytes", MAX32));
  return {
    fields: f.done(),
    url: typed(js, "transformWsUrl", "function"),
    auth: typed(js, "authenticate", "function"),
  };
}

export function topicList(topics) {
  if (typeof topics === "string") return [topics];
  if (!Array.isArray(topics)) fail("expected a topic string or an array of them");
  for (const t of topics) if (typeof t !== "string") fail("topics must be strings");
  return topics;
}

/** SUBSCRIBE's options byte from `{ qos, nl | noLocal, rap | retainAsPublished, rh | retainHandling }`. */
export function subscriptionOptions(o) {
  const flag = (short, long) => Boolean(get(o, short) ?? get(o, long));
  let b = qos(o);
  if (flag("nl", "noLocal")) b |= 4;
  if (flag("rap", "retainAsPublished")) b |= 8;
  const rh = get(o, "rh") ?? get(o, "retainHandling");
  return rh === 1 || rh === 2 ? b | (rh << 4) : b;
}
