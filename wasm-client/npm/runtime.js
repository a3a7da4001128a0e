// The browser runtime of aviary-mqtt's JavaScript API: the WebSocket, a wake-up timer that
// background-tab throttling does not stall, and the `online`/`offline` watch. The wasm engine
// is a state machine with no I/O; the client (api.js) feeds it what these report and carries
// out what it asks for. Written here rather than in Rust through web-sys, whose closures and
// glue cost the package kilobytes for the same few calls (the Rust API keeps its own copy in
// wasm-client/src/runtime for the Yew app).

/** The error handler every socket shares: `error` is always followed by `close`, which carries
 * the details. It stays on a dropped socket because Node's `ws` throws on an unhandled
 * `error`, including one fired after a connecting socket was closed. */
const ignore = () => {};

/**
 * Opens `url` with subprotocol `mqtt`, binary frames as `ArrayBuffer`s (a Blob needs an async
 * read per frame). Calls `opened()`, `data(Uint8Array)` for each binary frame (text frames are
 * not MQTT [MQTT-6.0.0-1] and are ignored) and `closed(detail)`. Throws on a malformed URL.
 */
export function openSocket(url, opened, data, closed) {
  const ws = new WebSocket(url, "mqtt");
  ws.binaryType = "arraybuffer";
  ws.onopen = opened;
  ws.onmessage = (e) => {
    if (e.data instanceof ArrayBuffer) data(new Uint8Array(e.data));
  };
  ws.onclose = (e) => closed(`WebSocket closed (code ${e.code}${e.reason ? ": " + e.reason : ""})`);
  ws.onerror = ignore;
  return ws;
}

/** Detaches the handlers first, then closes: a dropped socket never reports again, one of the
 * ways the client guarantees there is never more than one live socket. */
export function closeSocket(ws) {
  ws.onopen = ws.onmessage = ws.onclose = null;
  ws.close();
}

/** The timer's worker: one timeout at a time; a negative delay only cancels. */
const WORKER = "let t;onmessage=e=>{clearTimeout(t);if(e.data>=0)t=setTimeout(()=>postMessage(0),e.data)}";

/**
 * One resettable wake-up calling `fire`. Browsers throttle `setTimeout` in hidden tabs to once
 * a second, and after five minutes to once a minute, longer than most keep-alive intervals;
 * dedicated workers are exempt from that intensive throttling, so the timer runs in a tiny
 * worker from a Blob URL. Where there is no worker (Node, a CSP without `blob:`) it falls back
 * to `setTimeout`: the engine still pings on every incoming frame and decides from timestamps,
 * so a late timer costs a late ping, not a wrong one.
 */
export class Timer {
  #fire;
  #worker = null;
  #handle;

  constructor(fire) {
    this.#fire = fire;
    if (typeof Worker !== "function") return;
    try {
      const url = URL.createObjectURL(new Blob([WORKER], { type: "text/javascript" }));
      try {
        this.#worker = new Worker(url);
      } finally {
        URL.revokeObjectURL(url);
      }
      this.#worker.onmessage = () => fire();
    } catch {
      // No worker here: `setTimeout` it is.
    }
  }

  /** Whether the timer runs in a worker (immune to intensive throttling). */
  get inWorker() {
    return this.#worker !== null;
  }

  /** Fires after `ms` (a negative `ms` only cancels), replacing any earlier schedule. */
  schedule(ms) {
    if (this.#worker) return this.#worker.postMessage(ms);
    clearTimeout(this.#handle);
    if (ms >= 0) this.#handle = setTimeout(this.#fire, ms);
  }

  /** Cancels for good. */
  stop() {
    this.schedule(-1);
    this.#worker?.terminate();
    this.#worker = null;
  }
}

/**
 * Calls `change(true)` on `online` and `change(false)` on `offline` until the returned function
 * is called. Retrying while the browser knows it is offline only burns battery, and waiting
 * out a long backoff once it is back wastes the user's time. Environments without these events
 * (Node) count as always online.
 */
export function watchNetwork(change) {
  const g = globalThis;
  if (typeof g.addEventListener !== "function") return ignore;
  const on = () => change(true), off = () => change(false);
  g.addEventListener("online", on);
  g.addEventListener("offline", off);
  return () => {
    g.removeEventListener("online", on);
    g.removeEventListener("offline", off);
  };
}

/** `navigator.onLine`, or true where there is no such thing. */
export function isOnline() {
  const v = globalThis.navigator?.onLine;
  return typeof v === "boolean" ? v : true;
}
