// aviary-mqtt's JavaScript API: `connect()` and the `MqttClient` it resolves with, shaped like
// MQTT.js. Plain JavaScript over the wasm `Engine` (wasm-client/src/js_api): this file checks
// the options and writes them as field lists (wasm-client/src/fields.rs), keeps listeners and
// promises, and builds the packets and `MqttError`s from what the engine reports through one
// callback, `e(kind, a, b, text, bytes, more)`. Each build's entry binds it to its `Engine`.
// Built in Rust through `Reflect`, the same work was about a sixth of the .wasm.

const MAX32 = 4294967295;
const utf8 = new TextEncoder();
const text = new TextDecoder();

/** `ErrorKind` of the engine, by number (wasm-client/src/engine/error.rs). */
const CODES = ["CONNECTION_REFUSED", "CONNECT_TIMEOUT", "KEEPALIVE_TIMEOUT", "CONNECTION_LOST",
  "SERVER_DISCONNECT", "PROTOCOL_ERROR", "PUBLISH_FAILED", "SUBSCRIBE_FAILED",
  "UNSUBSCRIBE_FAILED", "QUEUE_FULL", "CLIENT_ENDED", "INVALID_ARGUMENT"];
const EVENTS = ["connect", "reconnect", "close", "offline", "error", "end", "message"];
/** Event kinds of the engine's callback (wasm-client/src/js_api/sink.rs). */
const MESSAGE = 0, DONE = 1, FAIL = 2, CONNECT = 3, CLOSE = 4, OFFLINE = 5, ERROR = 6, END = 7,
  AUTH = 8, URL = 9;
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
const USER = 0x26;

/** A field list: an identifier byte, then a 4-byte number or a 4-byte length and bytes. */
class Fields {
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

const isObject = (o) => typeof o === "object" && o !== null;
/** `o[key]`, or undefined when absent or null, or when `o` is no object. */
const get = (o, key) => (isObject(o) ? o[key] ?? undefined : undefined);
const fail = (message) => {
  throw new TypeError(message);
};

function int(o, key, max) {
  const v = get(o, key);
  if (v === undefined || (typeof v === "number" && v >= 0 && v <= max && Number.isInteger(v))) return v;
  fail(`\`${key}\` must be an integer from 0 to ${max}`);
}

function typed(o, key, type) {
  const v = get(o, key);
  if (v === undefined || typeof v === type) return v;
  fail(`\`${key}\` must be a ${type}`);
}

const qos = (o) => int(o, "qos", 2) ?? 0;

/** Bytes from a string (UTF-8), a Uint8Array, any other view, an ArrayBuffer or nothing. */
function bytes(v, what) {
  if (typeof v === "string") return utf8.encode(v);
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v == null) return new Uint8Array(0);
  fail(`${what} must be a string, Uint8Array or ArrayBuffer`);
}

/** `{ key: value | value[] }` as user properties, in order. */
function users(f, id, o) {
  const map = get(o, "userProperties");
  if (map === undefined) return;
  for (const [k, v] of Object.entries(map)) {
    for (const x of Array.isArray(v) ? v : [v]) {
      if (typeof x !== "string") fail("user property values must be strings");
      f.user(id, k, x);
    }
  }
}

function messageProperties(f, o, userId) {
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
function options(js) {
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

function topicList(topics) {
  if (typeof topics === "string") return [topics];
  if (!Array.isArray(topics)) fail("expected a topic string or an array of them");
  for (const t of topics) if (typeof t !== "string") fail("topics must be strings");
  return topics;
}

/** SUBSCRIBE's options byte from `{ qos, nl | noLocal, rap | retainAsPublished, rh | retainHandling }`. */
function subscriptionOptions(o) {
  const flag = (short, long) => Boolean(get(o, short) ?? get(o, long));
  let b = qos(o);
  if (flag("nl", "noLocal")) b |= 4;
  if (flag("rap", "retainAsPublished")) b |= 8;
  const rh = get(o, "rh") ?? get(o, "retainHandling");
  return rh === 1 || rh === 2 ? b | (rh << 4) : b;
}

/** MQTT 5 properties from the engine's field list, as MQTT.js shows them. */
function properties(list) {
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
function mqttError(code, message) {
  const e = new Error(message);
  e.name = "MqttError";
  e.code = CODES[code & 255];
  if (code >> 8) e.reasonCode = (code >> 8) - 1;
  return e;
}

/** Runs `ok` with what `call` returned (awaited) or `no` if it threw or rejected, later. */
function settled(call, ok, no) {
  let p;
  try {
    p = Promise.resolve(call());
  } catch (e) {
    p = Promise.reject(e);
  }
  p.then(ok, () => no());
}

/** The API on one build's `Engine` class. */
export function bind(Engine) {
  class MqttClient {
    #engine = null;
    /** Listeners by event, each list replaced (never changed) when listeners change. */
    #listeners = {};
    /** Promises of operations by token: `{ resolve, reject, names }`. */
    #replies = new Map();
    /** The error of the operation being called, reported during the call (token 0). */
    #failure = null;
    /** `connect()`'s promise until the first CONNACK or failure. */
    #connecting;
    #failedEarly = false;
    #url;
    #auth;

    /** Use `connect()`. */
    constructor(url, opts, connecting) {
      const { fields, url: urlHook, auth } = options(opts);
      this.#url = urlHook;
      this.#auth = auth;
      this.#connecting = connecting;
      const sink = { e: (...args) => this.#event(...args) };
      this.#engine = new Engine(url, fields, sink);
      // A malformed URL fails the first attempt during `new Engine`.
      if (this.#failedEarly) this.#engine.end(true, 0);
    }

    on(event, listener) {
      this.#add(event, listener, false);
    }

    once(event, listener) {
      this.#add(event, listener, true);
    }

    off(event, listener) {
      this.#set(event, this.#list(event).filter((l) => l.f !== listener));
    }

    subscribe(topics, options) {
      const f = new Fields();
      const names = [];
      const add = (topic, o) => {
        names.push(topic);
        f.str(0xc0, topic);
        f.num(0xc1, o);
      };
      if (typeof topics === "string" || Array.isArray(topics)) {
        const o = subscriptionOptions(options);
        for (const t of topicList(topics)) add(t, o);
      } else if (isObject(topics)) {
        for (const [t, o] of Object.entries(topics)) add(t, subscriptionOptions(o));
      } else {
        fail("expected a topic string, an array of them, or { topic: { qos } }");
      }
      const id = int(options, "subscriptionIdentifier", MAX32);
      if (id === 0 || id > 268435455) fail("`subscriptionIdentifier` must be an integer from 1 to 268435455");
      f.num(0x0b, id);
      users(f, USER, options);
      return this.#reply(this.#engine.subscribe(f.done()), names);
    }

    unsubscribe(topics, options) {
      const f = new Fields();
      for (const t of topicList(topics)) f.str(0xc0, t);
      users(f, USER, options);
      return this.#reply(this.#engine.unsubscribe(f.done()));
    }

    publish(topic, payload, options) {
      const data = bytes(payload, "payload");
      const q = qos(options);
      const retain = Boolean(get(options, "retain"));
      const props = get(options, "properties");
      let list;
      if (props !== undefined) {
        const f = new Fields();
        messageProperties(f, props, USER);
        list = f.done();
      }
      return this.#reply(this.#engine.publish(topic, data, q, retain, list));
    }

    end(force, options) {
      const timeout = int(options, "timeout", MAX32) ?? 5000;
      if (this.#state() & 4) return Promise.resolve();
      // The `end` event settles it, now (nothing in flight) or after the acknowledgements.
      const ended = new Promise((resolve) => this.#add("end", resolve, true));
      this.#engine.end(Boolean(force), timeout);
      return ended;
    }

    free() {
      this.#engine.free();
    }

    get connected() {
      return (this.#state() & 1) !== 0;
    }

    get reconnecting() {
      return (this.#state() & 2) !== 0;
    }

    get nextAttemptInMs() {
      const ms = this.#engine.nextAttempt();
      return ms < 0 ? undefined : ms;
    }

    get queuedCount() {
      return Math.floor(this.#engine.state() / 16);
    }

    get clientId() {
      return this.#engine.clientId();
    }

    get timerInWorker() {
      return (this.#state() & 8) !== 0;
    }

    #state() {
      return this.#engine.state() % 16;
    }

    /** A promise for the operation `token` (0: the call failed); then lets the engine work. */
    #reply(token, names) {
      let p;
      if (token === 0) {
        p = Promise.reject(this.#failure);
        this.#failure = null;
      } else {
        p = new Promise((resolve, reject) => this.#replies.set(token, { resolve, reject, names }));
      }
      this.#engine.pump();
      return p;
    }

    #list(event) {
      if (!EVENTS.includes(event)) fail(`unknown event \`${event}\``);
      return this.#listeners[event] ?? [];
    }

    #set(event, list) {
      this.#listeners[event] = list;
    }

    #add(event, f, once) {
      this.#set(event, [...this.#list(event), { f, once }]);
    }

    /** Calls the listeners of `event`, dropping `once` listeners first; a throw is ignored. */
    #emit(event, ...args) {
      const list = this.#listeners[event] ?? [];
      if (list.some((l) => l.once)) this.#set(event, list.filter((l) => !l.once));
      for (const l of list) {
        try {
          l.f.apply(undefined, args);
        } catch {
          // A listener's exception must not stop the engine's bookkeeping.
        }
      }
    }

    /** Everything the engine reports; `bytes` and `more` are views, valid only now. */
    #event(kind, a, b, str, bytes, more) {
      switch (kind) {
        case MESSAGE:
          return this.#message(a, b, str, bytes, more);
        case DONE: {
          const r = this.#take(a);
          const names = r?.names;
          r?.resolve(names && names.slice(0, bytes.length).map((topic, i) => ({ topic, qos: bytes[i] })));
          return;
        }
        case FAIL:
          if (a === 0) this.#failure = mqttError(b, str);
          else this.#take(a)?.reject(mqttError(b, str));
          return;
        case CONNECT:
          return this.#connected(b === 1, properties(more));
        case CLOSE:
          if (b >= 0) this.#settle(mqttError(b, str));
          return this.#emit("close");
        case OFFLINE:
          return this.#emit("offline");
        case ERROR: {
          const e = mqttError(b, str);
          this.#settle(e);
          return this.#emit("error", e);
        }
        case END:
          return this.#emit("end");
        case AUTH:
          return this.#challenge(a, str, bytes.slice());
        case URL:
          if (a > 1) this.#emit("reconnect");
          try {
            const hook = this.#url;
            return hook?.(str, a);
          } catch {
            return undefined; // the current URL, as if there were no hook
          }
      }
    }

    #take(token) {
      const r = this.#replies.get(token);
      this.#replies.delete(token);
      return r;
    }

    /**
     * Delivers a message. The `packet` object is skipped when every listener declares
     * exactly one or two parameters (`Function.length`), like `(topic, payload) => …`.
     */
    #message(id, flags, topic, view, props) {
      const list = this.#listeners.message ?? [];
      if (list.length === 0) return;
      const payload = view.slice();
      if (list.every((l) => l.f?.length === 1 || l.f?.length === 2)) {
        return this.#emit("message", topic, payload);
      }
      const packet = { cmd: "publish", topic, payload, qos: flags & 3, retain: (flags & 4) !== 0,
        dup: (flags & 8) !== 0 };
      if (id) packet.messageId = id;
      if (flags & 16) packet.properties = properties(props);
      this.#emit("message", topic, payload, packet);
    }

    #connected(sessionPresent, props) {
      const packet = { cmd: "connack", sessionPresent, reasonCode: 0, returnCode: 0, properties: props };
      const data = props.authenticationData;
      if (this.#auth && data) this.#checkServer(props.authenticationMethod ?? "", data.slice());
      else this.#settle();
      this.#emit("connect", packet);
    }

    /**
     * Settles `connect()` once: resolved by the first CONNACK, rejected by the first failure,
     * which also ends the client, so nothing retries behind the caller's back.
     */
    #settle(error) {
      const s = this.#connecting;
      if (!s) return;
      this.#connecting = null;
      if (!error) return s.resolve(this);
      s.reject(error);
      if (this.#engine) this.#engine.end(true, 0);
      else this.#failedEarly = true;
    }

    /**
     * Answers an AUTH challenge with `authenticate(method, data)` once it settles; no hook,
     * a throw, a rejection or an answer that is not bytes fails the attempt.
     */
    #challenge(attempt, method, data) {
      const hook = this.#auth;
      settled(
        () => (hook ? hook(method, data) : Promise.reject()),
        (v) => {
          let answer;
          try {
            answer = bytes(v, "");
          } catch {
            // not bytes: fails the attempt
          }
          this.#engine.auth(attempt, answer);
        },
        () => this.#engine.auth(attempt, undefined),
      );
    }

    /**
     * Hands the CONNACK's Authentication Data to `authenticate(method, data, true)`: a throw
     * or rejection means the broker did not prove itself, so the client ends and `connect()`
     * rejects; `connect()` resolves only once it passed.
     */
    #checkServer(method, data) {
      const s = this.#connecting;
      this.#connecting = null;
      const hook = this.#auth;
      settled(
        () => hook(method, data, true),
        () => s?.resolve(this),
        () => {
          this.#engine.end(true, 0);
          s?.reject(mqttError(0, "authenticate failed"));
        },
      );
    }
  }

  /**
   * Connects and resolves with the client once the broker accepts; rejects with an
   * MqttError if the first attempt fails (the client is then ended). Option mistakes throw.
   */
  function connect(url, options) {
    let connecting;
    const p = new Promise((resolve, reject) => (connecting = { resolve, reject }));
    new MqttClient(url, options, connecting);
    return p;
  }

  /**
   * A client connecting in the background, returned at once; it retries until `end()`
   * (unless `reconnectPeriod` is 0). For `aviary-mqtt/compat`; not part of the documented API.
   */
  function createClient(url, options) {
    return new MqttClient(url, options, null);
  }

  return { connect, createClient, MqttClient };
}
