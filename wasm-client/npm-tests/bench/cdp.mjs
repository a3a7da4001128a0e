// A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe`, for the browser
// bench (bench/throughput.mjs). Why not Playwright: it enables the Network domain, which makes
// Chromium mirror every WebSocket frame to the driver, and that cut MQTT.js's measured rate
// several-fold (issue 14). Here Chromium is spawned directly and only the domains the bench
// asks for are enabled (Runtime and Page), so the page's WebSocket traffic never leaves the
// renderer.
//
// The pipe: Chromium reads commands from its file descriptor 3 and writes responses and events
// to its file descriptor 4; each message is JSON terminated by a NUL byte. Commands carry
// increasing ids; responses are matched by id; events (no id) go to listeners by method. With
// `Target.attachToTarget({ flatten: true })` a page's commands and events travel on the same
// pipe, tagged with their `sessionId`. Every wait is bounded by a timeout.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Flags for a quiet headless Chromium on this machine (see ../shared/TOOLCHAIN.md). */
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--disable-extensions", "--mute-audio",
  // A background tab would have its timers throttled; the bench page is the only tab.
  "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];
/** Default bound of one command's round trip. */
const COMMAND_MS = 20_000;

/** Awaits a promise, failing after `ms`. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The connection: framing, ids, pending commands and event listeners. */
class Connection {
  constructor(input, output) {
    this.output = output;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Map();
    this.chunks = [];
    this.closedError = null;
    input.on("data", (chunk) => this.receive(chunk));
    input.on("close", () => this.fail(new Error("Chromium closed the DevTools pipe")));
    input.on("error", (err) => this.fail(err));
    output.on("error", (err) => this.fail(err));
  }

  /** Splits the byte stream at NUL bytes; a message may span chunks. */
  receive(chunk) {
    let start = 0;
    for (let nul = chunk.indexOf(0); nul !== -1; nul = chunk.indexOf(0, start)) {
      this.chunks.push(chunk.subarray(start, nul));
      const text = Buffer.concat(this.chunks).toString("utf8");
      this.chunks = [];
      start = nul + 1;
      this.dispatch(JSON.parse(text));
    }
    if (start < chunk.length) this.chunks.push(chunk.subarray(start));
  }

  dispatch(message) {
    if (message.id !== undefined) {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
      else waiter.resolve(message.result);
      return;
    }
    const key = `${message.sessionId ?? ""}:${message.method}`;
    for (const listener of this.listeners.get(key) ?? []) listener(message.params);
  }

  /** Rejects every pending command once the pipe is gone. */
  fail(err) {
    this.closedError ??= err;
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }

  /** Sends a command and resolves with its result (bounded by `ms`). */
  send(method, params = {}, sessionId = undefined, ms = COMMAND_MS) {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const message = { id, method, params };
    if (sessionId) message.sessionId = sessionId;
    const reply = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, method }));
    this.output.write(Buffer.concat([Buffer.from(JSON.stringify(message)), Buffer.from([0])]));
    return within(reply, ms, method).finally(() => this.pending.delete(id));
  }

  /** Calls `listener(params)` for every `method` event of `sessionId`; returns its removal. */
  on(method, sessionId, listener) {
    const key = `${sessionId ?? ""}:${method}`;
    const set = this.listeners.get(key) ?? new Set();
    set.add(listener);
    this.listeners.set(key, set);
    return () => set.delete(listener);
  }

  /**
   * Resolves with the next `method` event of `sessionId` for which `accept(params)` is true
   * (bounded by `ms`).
   */
  once(method, sessionId, ms, what = method, accept = () => true) {
    let off;
    const event = new Promise((resolve) => {
      off = this.on(method, sessionId, (params) => { if (accept(params)) resolve(params); });
    });
    return within(event, ms, what).finally(() => off());
  }
}

/** A page target attached with a flat session: Runtime and Page enabled, nothing else. */
export class Page {
  constructor(connection, sessionId) {
    this.connection = connection;
    this.sessionId = sessionId;
  }

  send(method, params = {}, ms = COMMAND_MS) {
    return this.connection.send(method, params, this.sessionId, ms);
  }

  /**
   * Evaluates `expression` in the page, awaiting a returned promise, and returns its value
   * (JSON-serialisable). A thrown exception in the page becomes a rejection here.
   */
  async evaluate(expression, ms = COMMAND_MS) {
    const r = await this.send("Runtime.evaluate",
      { expression, awaitPromise: true, returnByValue: true }, ms);
    if (r.exceptionDetails) {
      const d = r.exceptionDetails;
      throw new Error(`page: ${d.exception?.description ?? d.text}`);
    }
    return r.result.value;
  }

  /** Polls `expression` every `everyMs` until it is truthy (bounded by `ms`); returns it. */
  async waitFor(expression, ms, what, everyMs = 20) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      // A navigation in flight destroys the context: that is a "not yet", not an error.
      const value = await this.evaluate(expression, ms).catch(() => undefined);
      if (value) return value;
      await new Promise((r) => setTimeout(r, everyMs));
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  }

  /**
   * Resolves with the arguments (values) of the page's next `console.debug(tag, ...)`: a page
   * reports this way without being polled, so the waiting costs the page nothing.
   */
  async nextReport(tag, ms, what) {
    const isTag = (p) => p.args?.[0]?.value === tag;
    const event = await this.connection.once("Runtime.consoleAPICalled", this.sessionId, ms, what, isTag);
    return event.args.slice(1).map((a) => a.value);
  }

  /** Navigates and waits for the load event (bounded). */
  async navigate(url, ms = COMMAND_MS) {
    const loaded = this.connection.once("Page.loadEventFired", this.sessionId, ms, `load of ${url}`);
    // Awaited below; this only keeps a failed navigation from leaving it unhandled.
    loaded.catch(() => {});
    const r = await this.send("Page.navigate", { url }, ms);
    if (r.errorText) throw new Error(`navigation to ${url}: ${r.errorText}`);
    await loaded;
  }

  /** JS heap in use (bytes) of the page's isolate, after a full GC when `gc` is set. */
  async heapUsed({ gc = false } = {}) {
    if (gc) {
      // HeapProfiler is enabled only for this call: it is not a domain that sees traffic.
      await this.send("HeapProfiler.enable");
      await this.send("HeapProfiler.collectGarbage");
      await this.send("HeapProfiler.disable");
    }
    return (await this.send("Runtime.getHeapUsage")).usedSize;
  }
}

/** A Chromium process on a fresh profile, driven over its DevTools pipe. */
export class Browser {
  /** Spawns `binary`; `extraFlags` are added to FLAGS. */
  static async launch(binary, extraFlags = []) {
    const profile = mkdtempSync(join(tmpdir(), "aviary-bench-chromium-"));
    const child = spawn(binary, [...FLAGS, ...extraFlags, "--remote-debugging-pipe",
      `--user-data-dir=${profile}`, "about:blank"], {
      // fd 3: our commands to Chromium; fd 4: its replies. Its own output is not needed.
      stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"],
    });
    const browser = new Browser(child, profile);
    try {
      await browser.connection.send("Browser.getVersion", {}, undefined, 30_000);
    } catch (err) {
      await browser.close();
      throw err;
    }
    return browser;
  }

  constructor(child, profile) {
    this.child = child;
    this.profile = profile;
    this.connection = new Connection(child.stdio[4], child.stdio[3]);
    // An error in the bench must not leave Chromium running.
    this.onExit = () => child.kill("SIGKILL");
    process.on("exit", this.onExit);
  }

  /** Opens a tab and attaches to it with only Runtime and Page enabled. */
  async newPage() {
    const { targetId } = await this.connection.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.connection.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this.connection, sessionId);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    return page;
  }

  /** Asks Chromium to close, kills it if it has not exited within 5 s, removes the profile. */
  async close() {
    const exited = this.child.exitCode !== null || this.child.signalCode !== null
      ? Promise.resolve()
      : new Promise((r) => this.child.once("exit", r));
    await this.connection.send("Browser.close", {}, undefined, 5000).catch(() => {});
    await within(exited, 5000, "Chromium to exit").catch(() => {
      this.child.kill("SIGKILL");
      return within(exited, 5000, "Chromium to die").catch(() => {});
    });
    process.off("exit", this.onExit);
    rmSync(this.profile, { recursive: true, force: true, maxRetries: 3 });
  }
}
