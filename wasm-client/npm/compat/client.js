// The MQTT.js-shaped client of `aviary-mqtt/compat`: created synchronously, callbacks or
// promises, Buffer-like payloads, an EventEmitter. It drives an aviary-mqtt client (the wasm
// one) and adds only what MQTT.js code relies on and aviary-mqtt does differently: calls made
// before the wasm is loaded wait in order, `end()` maps onto aviary-mqtt's graceful or forced
// end, and callbacks get MQTT.js's arguments.

import { EventEmitter } from "./emitter.js";
import { toPayload } from "./payload.js";
import { resolveArgs, aviaryOptions } from "./options.js";

/** aviary-mqtt events passed on unchanged (`connect`, `end` and `message` get extra care). */
const FORWARDED = ["reconnect", "close", "offline", "error"];

const disconnecting = () => new Error("client disconnecting");

export class MqttClient extends EventEmitter {
  /** () => createClient, or a promise of it while the wasm loads. */
  #load;
  #wsUrl;
  /** The aviary-mqtt client, once created. */
  #inner = null;
  #started = false;
  /** Operations called before the inner client existed, in call order. */
  #waiting = [];
  /** The `message` listener on the inner client and its parameter count (0: none). */
  #forward = null;
  #forwardArity = 0;

  /** Use `connect()`; the constructor is not part of the compatible surface. */
  constructor(load, url, options) {
    super();
    const { wsUrl, opts } = resolveArgs(url, options);
    aviaryOptions(opts, this); // option mistakes throw here, from connect(), as in MQTT.js
    this.#load = load;
    this.#wsUrl = wsUrl;
    this.options = opts;
    this.disconnecting = false;
    this.disconnected = false;
    if (!opts.manualConnect) this.connect();
  }

  get connected() {
    return this.#inner?.connected ?? false;
  }

  get reconnecting() {
    return this.#inner?.reconnecting ?? false;
  }

  /** Starts connecting (only needed with `manualConnect: true`). */
  connect() {
    if (this.#started) return this;
    this.#started = true;
    const loaded = this.#load();
    if (typeof loaded === "function") {
      // Created now: an option the wasm side rejects throws from here, like MQTT.js's checks.
      try {
        this.#start(loaded);
      } catch (err) {
        this.#finish();
        throw err;
      }
    } else {
      loaded.then((create) => this.#start(create)).catch((err) => this.#fail(err));
    }
    return this;
  }

  /** publish(topic, message, [options], [callback(err)]) */
  publish(topic, message, options, callback) {
    if (typeof options === "function") [options, callback] = [undefined, options];
    settle(this.#publish(topic, message, options), callback, () => []);
    return this;
  }

  publishAsync(topic, message, options) {
    return this.#publish(topic, message, options).then(() => undefined);
  }

  /** subscribe(topic | topic[] | { [topic]: { qos } }, [options], [callback(err, granted)]) */
  subscribe(topics, options, callback) {
    if (typeof options === "function") [options, callback] = [undefined, options];
    settle(this.#subscribe(topics, options), callback, (granted) => [null, granted]);
    return this;
  }

  subscribeAsync(topics, options) {
    return this.#subscribe(topics, options);
  }

  /** unsubscribe(topic | topic[], [options], [callback(err)]) */
  unsubscribe(topics, options, callback) {
    if (typeof options === "function") [options, callback] = [undefined, options];
    settle(this.#unsubscribe(topics, options), callback, () => []);
    return this;
  }

  unsubscribeAsync(topics, options) {
    return this.#unsubscribe(topics, options).then(() => undefined);
  }

  /**
   * end([force], [options], [callback]): without `force`, operations in flight (QoS 1/2
   * publishes, subscribes) finish first, as in MQTT.js, for at most `options.timeout` ms
   * (aviary-mqtt's graceful end, default 5 s); a lost connection stops the wait. `force`
   * drops them at once. DISCONNECT then tells the broker to discard the will.
   */
  end(force, options, callback) {
    // MQTT.js's argument shuffle: end(cb), end(force, cb), end(options, cb)...
    if (typeof force !== "boolean") [force, options, callback] = [false, force, callback ?? options];
    if (typeof options !== "object" || options === null) [options, callback] = [null, callback ?? options];
    const done = typeof callback === "function" ? callback : () => {};
    if (this.disconnecting) {
      if (this.disconnected) done();
      else {
        this.once("end", () => done());
        // end(true) cuts short a graceful end still waiting for acknowledgements.
        if (force && this.#inner) this.#inner.end(true);
      }
      return this;
    }
    this.disconnecting = true;
    // The inner client's `end(force)` does the waiting (bounded by its timeout), so operations
    // still queued here before the wasm loaded are the only ones this layer settles itself.
    if (this.#inner) this.once("end", () => done());
    this.#finish(force, options?.timeout);
    if (!this.#inner) done();
    return this;
  }

  endAsync(force, options) {
    return new Promise((resolve) => this.end(force, options, () => resolve()));
  }

  /**
   * MQTT 5 enhanced authentication, as in MQTT.js: override to answer the broker's AUTH
   * challenge `packet` (`{ cmd: "auth", reasonCode: 24, properties: { authenticationMethod,
   * authenticationData } }`) with `callback(error, authPacket)`, whose
   * `properties.authenticationData` is sent back. The default answers nothing, which fails
   * the attempt.
   */
  handleAuth(packet, callback) {
    callback();
  }

  _listenersChanged(event) {
    if (event === "message" || event === "packetreceive") this.#tuneForwarding();
  }

  #start(create) {
    if (this.disconnecting) return; // ended while the wasm was loading
    const inner = create(this.#wsUrl, aviaryOptions(this.options, this));
    this.#inner = inner;
    this.options.clientId ??= inner.clientId;
    inner.on("connect", (connack) => {
      this.emit("packetreceive", connack);
      this.emit("connect", connack);
    });
    inner.on("end", () => {
      this.disconnecting = true;
      this.disconnected = true;
      this.emit("end");
    });
    for (const event of FORWARDED) inner.on(event, (...args) => this.emit(event, ...args));
    this.#tuneForwarding();
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w.resolve(call(w.fn, inner));
  }

  /**
   * The client could not be created once the wasm had loaded (or the wasm failed to load):
   * report it, as an uncaught error if nobody listens (it must not pass unseen), and end.
   */
  #fail(err) {
    if (!this.emit("error", err)) {
      queueMicrotask(() => {
        throw err;
      });
    }
    this.#finish();
  }

  /** Ends the inner client (which emits `close` and `end`), or ends without one. */
  #finish(force = true, timeout) {
    this.disconnecting = true;
    if (this.#inner) {
      this.#inner.end(Boolean(force), timeout === undefined ? undefined : { timeout });
      return;
    }
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w.reject(disconnecting());
    if (!this.disconnected) {
      this.disconnected = true;
      this.emit("end");
    }
  }

  /**
   * Runs `fn(inner)` now, or once the inner client exists, keeping call order; returns its
   * promise.
   */
  #op(fn) {
    if (this.disconnecting) return Promise.reject(disconnecting());
    return this.#inner
      ? call(fn, this.#inner)
      : new Promise((resolve, reject) => this.#waiting.push({ fn, resolve, reject }));
  }

  #publish(topic, message, options = {}) {
    const o = { qos: options?.qos ?? 0, retain: Boolean(options?.retain) };
    if (options?.properties) o.properties = options.properties;
    return this.#op((c) => c.publish(topic, message ?? "", o));
  }

  #subscribe(topics, options) {
    const pick = (o) => {
      if (typeof o === "number") return { qos: o };
      const { qos = 0, nl, rap, rh } = o ?? {};
      return { qos, nl, rap, rh };
    };
    // MQTT.js's `options.properties` (MQTT 5 SUBSCRIBE properties) hold for the whole call;
    // aviary-mqtt takes them beside the options.
    const { subscriptionIdentifier, userProperties } = options?.properties ?? {};
    const props = { subscriptionIdentifier, userProperties };
    if (typeof topics === "string" || Array.isArray(topics)) {
      const list = typeof topics === "string" ? [topics] : topics;
      return this.#op((c) => c.subscribe(list, { ...pick(options), ...props }));
    }
    if (topics && typeof topics === "object") {
      // { topic: { qos } } (or { topic: qos }); MQTT.js's `resubscribe` key is not a topic.
      const map = {};
      for (const [topic, o] of Object.entries(topics)) if (topic !== "resubscribe") map[topic] = pick(o);
      return this.#op((c) => c.subscribe(map, props));
    }
    return Promise.reject(new TypeError("subscribe: expected a topic, an array of topics or { topic: { qos } }"));
  }

  #unsubscribe(topics, options) {
    const userProperties = options?.properties?.userProperties;
    return this.#op((c) => c.unsubscribe(topics, { userProperties }));
  }

  /**
   * Keeps one `message` listener on the inner client, declaring the parameters the
   * listeners here need: aviary-mqtt skips building the packet object (its costly part) for
   * a listener of two parameters, so the packet is asked for only when a `message` listener
   * declares more (or uses `arguments`) or someone listens to `packetreceive`.
   */
  #tuneForwarding() {
    const inner = this.#inner;
    if (!inner) return;
    const listeners = this.listeners("message");
    const wantsPacket = this.listenerCount("packetreceive") > 0 ||
      listeners.some((f) => f.length !== 1 && f.length !== 2);
    const arity = listeners.length === 0 && !wantsPacket ? 0 : wantsPacket ? 3 : 2;
    if (arity === this.#forwardArity) return;
    if (this.#forward) inner.off("message", this.#forward);
    this.#forward = arity === 0 ? null
      : arity === 3 ? (topic, bytes, packet) => this.#message(topic, bytes, packet)
      : (topic, bytes) => this.#message(topic, bytes);
    if (this.#forward) inner.on("message", this.#forward);
    this.#forwardArity = arity;
  }

  #message(topic, bytes, packet) {
    const payload = toPayload(bytes);
    if (packet) {
      packet.payload = payload;
      this.emit("packetreceive", packet);
    }
    this.emit("message", topic, payload, packet);
  }
}

/** `fn(inner)` as a promise, a synchronous throw (a TypeError for a bad argument) included. */
function call(fn, inner) {
  try {
    return Promise.resolve(fn(inner));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Calls an MQTT.js-style callback when `promise` settles; without one, errors are dropped. */
function settle(promise, callback, args) {
  if (typeof callback !== "function") {
    promise.catch(() => {});
    return;
  }
  promise.then((value) => callback(...args(value)), (err) => callback(err));
}
