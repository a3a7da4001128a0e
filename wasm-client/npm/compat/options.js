// MQTT.js's connection arguments turned into aviary-mqtt's: the broker URL (aviary-mqtt only
// speaks WebSocket, so `mqtt://` becomes `ws://`, as MQTT.js itself does in browsers) and the
// options object (same names; the few that differ are mapped here, unknown ones ignored).

import { toPayload } from "./payload.js";

/** MQTT.js scheme → WebSocket scheme. */
const SCHEMES = {
  "ws:": "ws:", "wss:": "wss:",
  "mqtt:": "ws:", "tcp:": "ws:",
  "mqtts:": "wss:", "ssl:": "wss:", "tls:": "wss:",
};

/**
 * The WebSocket URL and the MQTT.js options from `connect(url, options)` or
 * `connect(options)` (`{ protocol, host | hostname, port, path }`).
 */
export function resolveArgs(url, options) {
  if (url !== null && typeof url === "object") {
    options = url;
    url = undefined;
  }
  const opts = { ...(options ?? {}) };
  if (url === undefined || url === null) {
    const scheme = String(opts.protocol ?? "ws").replace(/:?$/, "");
    const host = opts.hostname ?? opts.host ?? "localhost";
    url = `${scheme}://${host}${opts.port ? `:${opts.port}` : ""}`;
  }
  const parsed = new URL(String(url)); // throws a TypeError for a malformed URL, like MQTT.js
  const scheme = SCHEMES[parsed.protocol];
  if (!scheme) throw new TypeError(`unsupported protocol ${parsed.protocol} (use ws:, wss:, mqtt: or mqtts:)`);
  if (parsed.username && opts.username === undefined) opts.username = decodeURIComponent(parsed.username);
  if (parsed.password && opts.password === undefined) opts.password = decodeURIComponent(parsed.password);
  const host = parsed.port || !opts.port ? parsed.host : `${parsed.hostname}:${opts.port}`;
  // No path in the URL: MQTT.js's WebSocket default, `/mqtt` (also the gateway's path).
  const path = parsed.pathname && parsed.pathname !== "/" ? parsed.pathname : (opts.path ?? "/mqtt");
  return { wsUrl: `${scheme}//${host}${path}${parsed.search}`, opts };
}

/** aviary-mqtt `connect()` options from MQTT.js options; `client` is passed to transformWsUrl. */
export function aviaryOptions(opts, client) {
  if (opts.protocolVersion !== undefined && opts.protocolVersion !== 4 && opts.protocolVersion !== 5) {
    throw new TypeError("protocolVersion must be 4 (MQTT 3.1.1) or 5; MQTT 3.1 (3) is not supported");
  }
  const o = {};
  for (const key of ["clientId", "username", "password", "protocolVersion", "clean", "keepalive",
    "connectTimeout", "reconnectPeriod", "reconnectMaxPeriod", "resubscribe", "properties"]) {
    if (opts[key] !== undefined && opts[key] !== null) o[key] = opts[key];
  }
  if (opts.will) {
    const { topic, payload, qos, retain, properties } = opts.will;
    o.will = { topic, payload: payload ?? "", qos, retain, properties };
  }
  if (typeof opts.transformWsUrl === "function") {
    // MQTT.js: (url, options, client) => url; aviary-mqtt: (url, attempt) => url.
    o.transformWsUrl = (url) => opts.transformWsUrl(url, opts, client);
  }
  // MQTT.js answers AUTH challenges with `client.handleAuth(packet, callback)` (overridable).
  // MQTT.js sees no CONNACK data there (`done`): nothing to check.
  o.authenticate = (method, data, done) => done ? undefined : new Promise((resolve, reject) => {
    const packet = { cmd: "auth", reasonCode: 24,
      properties: { authenticationMethod: method, authenticationData: toPayload(data) } };
    client.handleAuth(packet, (err, reply) => {
      const answer = reply?.properties?.authenticationData;
      if (err || answer === undefined) reject(err ?? new Error("no auth packet to continue"));
      else resolve(answer);
    });
  });
  return o;
}
