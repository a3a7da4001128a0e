// aviary-mqtt's JavaScript API: `connect()` and the `MqttClient` it resolves with, shaped like
// MQTT.js. Plain JavaScript over the wasm `Engine` (wasm-client/src/js_api): the options are
// checked and written as field lists by fields.js; this file keeps listeners and promises,
// runs the socket and timer of runtime.js for the engine, and turns what the engine reports
// through one callback, `e(kind, a, b, text, bytes, more)`, into events (reports.js builds the
// packets' properties and the `MqttError`s). Each build's entry binds it to its `Engine`; the
// package ships these modules as one minified `api.js`. Built in Rust through `Reflect` and
// web-sys, the same work was about a sixth of the .wasm.

import {
  Fields, MAX32, USER, bytes, fail, get, int, isObject, messageProperties, options, qos,
  subscriptionOptions, topicList, users, utf8,
} from "./fields.js";
import { mqttError, properties } from "./reports.js";
import { Timer, closeSocket, isOnline, openSocket, watchNetwork } from "./runtime.js";

const EVENTS = ["connect", "reconnect", "close", "offline", "error", "end", "message"];
/** Event kinds of the engine's callback (wasm-client/src/js_api/sink.rs). */
const MESSAGE = 0, DONE = 1, FAIL = 2, CONNECT = 3, CLOSE = 4, OFFLINE = 5, ERROR = 6, END = 7,
  AUTH = 8, OPEN = 9, SEND = 10, SHUT = 11, TIMER = 12, INVALID = 13, CLIENT_ID = 14;
/** What `Engine.signal` is told (wasm-client/src/js_api/mod.rs, `signal`). */
const OPENED = 0, TIMEOUT = 1, NET_UP = 2, NET_DOWN = 3, START_UP = 4, START_DOWN = 5, PUMP = 6,
  END_NOW = 7, END_GRACEFULLY = 8, STATE = 9, NEXT_ATTEMPT = 10, AUTH_FAILED = 11;
/** The field list of a publish without properties. */
const NO_FIELDS = new Uint8Array(0);

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
    /** Why the arguments of the call in progress are invalid, as the engine reported it. */
    #invalid = null;
    /** `connect()`'s promise until the first CONNACK or failure. */
    #connecting;
    /** The URL of the next attempt, and `transformWsUrl`. */
    #href;
    #url;
    #auth;
    /** The connection attempt the engine last asked for (see `#open`). */
    #attempt = 0;
    /** The WebSocket, while there is one; the timer and the network watch until the end. */
    #socket = null;
    #timer;
    #unwatch;
    #freed = false;
    /** The client id in use: reported by the engine at the start, or assigned by the broker. */
    #clientId = "";

    /** Use `connect()`. */
    constructor(url, opts, connecting) {
      const { fields, url: urlHook, auth } = options(opts);
      this.#href = url;
      this.#url = urlHook;
      this.#auth = auth;
      this.#connecting = connecting;
      const sink = { e: (...args) => this.#event(...args) };
      const engine = (this.#engine = new Engine(fields, sink));
      if (this.#invalid !== null) {
        engine.free();
        this.#throwInvalid();
      }
      this.#timer = new Timer(() => engine.signal(TIMEOUT));
      this.#unwatch = watchNetwork((online) => engine.signal(online ? NET_UP : NET_DOWN));
      engine.signal(isOnline() ? START_UP : START_DOWN);
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
      return this.#reply(this.#engine.subscribe(f.done(), false), names);
    }

    unsubscribe(topics, options) {
      const f = new Fields();
      for (const t of topicList(topics)) f.str(0xc0, t);
      users(f, USER, options);
      return this.#reply(this.#engine.subscribe(f.done(), true));
    }

    publish(topic, payload, options) {
      const data = bytes(payload, "payload");
      const q = qos(options);
      const retain = Boolean(get(options, "retain"));
      const props = get(options, "properties");
      let list = NO_FIELDS;
      if (props !== undefined) {
        const f = new Fields();
        messageProperties(f, props, USER);
        list = f.done();
      }
      if (typeof topic !== "string") fail("`topic` must be a string");
      return this.#reply(this.#engine.publish(utf8.encode(topic), data, q, retain, list));
    }

    end(force, options) {
      const timeout = int(options, "timeout", MAX32) ?? 5000;
      if (this.#state() & 4) return Promise.resolve();
      // The `end` event settles it, now (nothing in flight) or after the acknowledgements.
      const ended = new Promise((resolve) => this.#add("end", resolve, true));
      this.#engine.signal(force ? END_NOW : END_GRACEFULLY, timeout);
      return ended;
    }

    /** Releases the engine's wasm memory: now if the client has ended, else once it ends (a
     * connected client keeps working even when the application drops it). */
    free() {
      this.#freed = true;
      if (!this.#timer) this.#engine.free();
    }

    get connected() {
      return (this.#state() & 1) !== 0;
    }

    get reconnecting() {
      return (this.#state() & 2) !== 0;
    }

    get nextAttemptInMs() {
      const ms = this.#engine.signal(NEXT_ATTEMPT);
      return ms < 0 ? undefined : ms;
    }

    get queuedCount() {
      return Math.floor(this.#engine.signal(STATE) / 16);
    }

    get clientId() {
      return this.#clientId;
    }

    get timerInWorker() {
      return this.#timer?.inWorker ?? false;
    }

    #state() {
      return this.#engine.signal(STATE) % 16;
    }

    /** A promise for the operation `token` (0: the call failed); then lets the engine work. */
    #reply(token, names) {
      if (this.#invalid !== null) this.#throwInvalid();
      let p;
      if (token === 0) {
        p = Promise.reject(this.#failure);
        this.#failure = null;
      } else {
        p = new Promise((resolve, reject) => this.#replies.set(token, { resolve, reject, names }));
      }
      this.#engine.signal(PUMP);
      return p;
    }

    #throwInvalid() {
      const message = this.#invalid;
      this.#invalid = null;
      fail(message);
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
          this.#emit("end");
          return this.#shutDown();
        case AUTH:
          return this.#challenge(a, str, bytes.slice());
        case OPEN:
          return this.#open(a);
        case SEND:
          try {
            this.#socket?.send(bytes);
          } catch {
            // Already closing: the close event that follows reports the loss.
          }
          return;
        case SHUT:
          return this.#dropSocket();
        case TIMER:
          return this.#timer?.schedule(b < 0 ? -1 : a);
        case INVALID:
          this.#invalid = str;
          return;
        case CLIENT_ID:
          this.#clientId = str;
          return;
      }
    }

    /**
     * Opens the socket for connection attempt `attempt`, at the URL `transformWsUrl` returns
     * (a string, or a promise of one: token refresh and the like), else at the current one.
     */
    #open(attempt) {
      this.#attempt = attempt;
      if (attempt > 1) this.#emit("reconnect");
      let next;
      try {
        next = this.#url?.(this.#href, attempt);
      } catch {
        // the current URL, as if there were no hook
      }
      if (!(next instanceof Promise)) {
        if (typeof next === "string") this.#href = next;
        return this.#openSocket();
      }
      next.then(
        (url) => {
          // Ignore a promise that resolves after its attempt was abandoned.
          if (this.#attempt !== attempt || this.#socket || !this.#timer) return;
          if (typeof url === "string") this.#href = url;
          this.#openSocket();
        },
        () => this.#closed("the URL hook failed"),
      );
    }

    #openSocket() {
      const url = this.#href, engine = this.#engine;
      try {
        this.#socket = openSocket(url, () => engine.signal(OPENED), (data) => engine.data(data), (detail) => {
          this.#socket = null;
          this.#closed(detail);
        });
      } catch {
        // A malformed URL throws at once; it fails the attempt like a failed connection.
        this.#closed(`cannot open a WebSocket to ${url}`);
      }
    }

    /** Tells the engine the socket closed (or never opened), and why. */
    #closed(detail) {
      this.#engine.input(0, utf8.encode(detail));
    }

    #dropSocket() {
      const ws = this.#socket;
      this.#socket = null;
      if (ws) closeSocket(ws);
    }

    /** Releases the socket, the timer and the network watch once the client has ended. */
    #shutDown() {
      this.#dropSocket();
      this.#timer?.stop();
      this.#timer = null;
      this.#unwatch?.();
      this.#unwatch = null;
      // Called from inside the engine, which must not be freed under its own feet.
      const engine = this.#engine;
      if (this.#freed) queueMicrotask(() => engine.free());
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
      // The engine reconnects with the id the broker assigned, so it is the one in use now.
      this.#clientId = props.assignedClientIdentifier ?? this.#clientId;
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
      this.#engine.signal(END_NOW);
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
          if (answer) this.#engine.input(attempt, answer);
          else this.#engine.signal(AUTH_FAILED, attempt);
        },
        () => this.#engine.signal(AUTH_FAILED, attempt),
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
          this.#engine.signal(END_NOW);
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
