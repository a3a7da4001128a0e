// Helpers for the MQTT.js interop tests: start the real `aviary` binary on
// port 0 (its path comes from AVIARY_BIN; `cargo xtask test` builds it) and
// learn its ports from the `listening mqtt=... http=...` line, connect MQTT.js
// clients that never reconnect behind the test's back, and wait for messages.
// Every wait is bounded by WAIT_MS and fails naming what did not happen;
// readiness is always an event, never a sleep.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import mqtt from 'mqtt';

/** How long any single expected event may take. */
export const WAIT_MS = 10_000;

/** Resolves like `promise`, or rejects after `ms` naming `what`. */
export async function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts `aviary --mqtt 127.0.0.1:0 --http 127.0.0.1:0` in a fresh temporary
 * directory (its data dir, and no web app), and resolves once it listens.
 */
export async function startGateway() {
  const bin = process.env.AVIARY_BIN;
  if (!bin) {
    throw new Error('AVIARY_BIN must name the aviary binary (cargo build -p aviary, then target/debug/aviary)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'aviary-node-'));
  const child = spawn(
    bin,
    ['--mqtt', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
    {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG ?? 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const log = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => log.push(chunk));
  const exited = once(child, 'exit');
  const listening = new Promise((resolve, reject) => {
    // Keeps reading after the line, so the gateway never blocks on a full pipe.
    createInterface({ input: child.stdout }).on('line', (line) => {
      log.push(line);
      const m = line.match(/listening mqtt=(\S+) http=(\S+)/);
      if (m) resolve({ mqtt: m[1], http: m[2] });
    });
    exited.then(([code, signal]) =>
      reject(new Error(`aviary exited (${code ?? signal}) before listening:\n${log.join('\n')}`)));
    child.once('error', reject);
  });
  let addrs;
  try {
    addrs = await within(WAIT_MS, 'the gateway to print its `listening` line', listening);
  } catch (e) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    ...addrs,
    wsUrl: `ws://${addrs.http}/mqtt`,
    tcpUrl: `mqtt://${addrs.mqtt}`,
    httpUrl: `http://${addrs.http}`,
    log,
    /** SIGTERM, then waits for a clean exit. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const [code, signal] = await within(WAIT_MS, 'the gateway to exit', exited);
        if (code !== 0) {
          throw new Error(`aviary exited with ${code ?? signal}:\n${log.join('\n')}`);
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Connects an MQTT.js client that does not reconnect; resolves on CONNACK. */
export async function connect(url, options = {}) {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options });
  client.on('error', () => {}); // surfaced through the promises below
  try {
    await within(WAIT_MS, `CONNACK from ${url}`, new Promise((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
      client.once('close', () => reject(new Error(`connection to ${url} closed before CONNACK`)));
    }));
  } catch (e) {
    client.end(true);
    throw e;
  }
  return client;
}

/** Queues a client's incoming messages; `next()` takes them in order. */
export function inbox(client) {
  const queue = [];
  const waiters = [];
  client.on('message', (topic, payload, packet) => {
    const message = { topic, payload: payload.toString(), packet };
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  return {
    next(what = 'a message') {
      if (queue.length > 0) return Promise.resolve(queue.shift());
      return within(WAIT_MS, what, new Promise((resolve) => waiters.push(resolve)));
    },
  };
}

/** Subscribes and checks every filter was granted `qos`. */
export async function subscribe(client, filter, qos) {
  const granted = await within(WAIT_MS, `SUBACK for ${filter}`, client.subscribeAsync(filter, { qos }));
  for (const g of granted) {
    if (g.qos !== qos) throw new Error(`${filter}: granted ${g.qos}, wanted ${qos}`);
  }
}

/** Publishes; resolves when the QoS exchange is complete. */
export function publish(client, topic, payload, options) {
  return within(WAIT_MS, `publish to ${topic} to complete`, client.publishAsync(topic, payload, options));
}

/** Ends a client cleanly (DISCONNECT), bounded. */
export function end(client) {
  return within(WAIT_MS, 'the client to end', client.endAsync());
}
