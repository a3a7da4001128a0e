// `aviary-mqtt/compat` in Node through the packed package: MQTT.js's call forms (callbacks,
// promises, argument shuffles), Buffer payloads, and MQTT.js's connection behaviour where it
// differs from aviary-mqtt's own `connect()` (a client returned at once, calls queued until
// connected, a failed first attempt retried, `end()` letting in-flight messages finish).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import mqtt from "mqtt";
import compat, { connect, connectAsync, MqttClient } from "aviary-mqtt/compat";
import { startGateway, once, within } from "../lib/gateway.mjs";

// Node 20 has no global WebSocket; the package uses whatever `globalThis.WebSocket` is.
globalThis.WebSocket = WebSocket;

let gw;
const unique = (name) => `compat-node/${Math.random().toString(36).slice(2)}/${name}`;

before(async () => {
  gw = await startGateway();
});
after(() => gw.stop());

test("the default export and the named ones are MQTT.js's", () => {
  assert.equal(compat.connect, connect);
  assert.equal(compat.connectAsync, connectAsync);
  assert.equal(typeof MqttClient, "function");
});

test("connect returns a client at once; calls made before CONNACK wait for it", async () => {
  const topic = unique("early");
  const client = connect(gw.wsUrl, { clientId: unique("id").replaceAll("/", "-") });
  assert.ok(client instanceof MqttClient);
  assert.equal(client.connected, false);
  const got = once(client, "message");
  const granted = new Promise((resolve, reject) =>
    client.subscribe(topic, { qos: 1 }, (err, g) => (err ? reject(err) : resolve(g))));
  const published = new Promise((resolve) => client.publish(topic, "early bird", { qos: 1 }, resolve));
  assert.deepEqual(await granted, [{ topic, qos: 1 }]);
  assert.equal(await published, undefined);
  const [t, payload, packet] = await got;
  assert.equal(t, topic);
  assert.ok(Buffer.isBuffer(payload), "payloads are Buffers in Node");
  assert.equal(payload.toString(), "early bird");
  assert.equal(packet.qos, 1);
  assert.equal(packet.payload, payload);
  assert.equal(client.connected, true);
  await client.endAsync();
  assert.equal(client.disconnected, true);
});

test("the *Async forms, and messages both ways with an MQTT.js device over TCP", async () => {
  const topic = unique("pets/5");
  const web = await connectAsync(gw.wsUrl, { protocolVersion: 5, clean: true });
  const device = await mqtt.connectAsync(gw.mqttUrl);
  await device.subscribeAsync(`${topic}/cmd`, { qos: 1 });
  assert.deepEqual(await web.subscribeAsync([`${topic}/location`], { qos: 2 }),
    [{ topic: `${topic}/location`, qos: 2 }]);
  const location = once(web, "message");
  await device.publishAsync(`${topic}/location`, JSON.stringify({ lat: 1 }), { qos: 2 });
  const [, payload] = await location;
  assert.deepEqual(JSON.parse(payload), { lat: 1 });
  const command = once(device, "message");
  assert.equal(await web.publishAsync(`${topic}/cmd`, Buffer.from("beep"), { qos: 1 }), undefined);
  assert.equal((await command)[1].toString(), "beep");
  assert.equal(await web.unsubscribeAsync(`${topic}/location`), undefined);
  await web.endAsync();
  await device.endAsync();
});

test("end() without force lets a QoS 1 publish finish; with force it fails it", async () => {
  const topic = unique("end");
  const watcher = await mqtt.connectAsync(gw.mqttUrl);
  await watcher.subscribeAsync(topic, { qos: 1 });
  const got = once(watcher, "message");
  const client = await connectAsync(gw.wsUrl);
  let publishErr = "not called";
  client.publish(topic, "last words", { qos: 1 }, (err) => { publishErr = err; });
  const events = [];
  client.on("close", () => events.push("close"));
  client.on("end", () => events.push("end"));
  await new Promise((resolve) => client.end(resolve));
  assert.equal(publishErr, undefined);
  assert.deepEqual(events, ["close", "end"]);
  assert.equal((await got)[1].toString(), "last words");
  // Calls after end() fail with MQTT.js's error, through the callback.
  const err = await new Promise((resolve) => client.publish(topic, "too late", resolve));
  assert.match(err.message, /disconnecting/);

  const forced = await connectAsync(gw.wsUrl);
  await forced.subscribeAsync(unique("x"));
  const pending = forced.subscribeAsync(unique("y"));
  forced.end(true);
  await assert.rejects(pending, (e) => e.code === "CLIENT_ENDED");
  await watcher.endAsync();
});

test("a failed first attempt is retried, as in MQTT.js, until the broker is back", async () => {
  const url = gw.wsUrl;
  await gw.stop(); // gw.restart() brings it back on the same port
  const client = connect(url, { reconnectPeriod: 100, reconnectMaxPeriod: 200, connectTimeout: 2000 });
  const events = [];
  for (const e of ["connect", "reconnect", "close", "offline", "end"]) client.on(e, () => events.push(e));
  client.on("error", () => events.push("error"));
  await once(client, "reconnect");
  assert.equal(client.connected, false);
  await gw.restart();
  await once(client, "connect", 15_000);
  assert.ok(events.includes("close"), `events: ${events}`);
  assert.equal(events.at(-1), "connect");
  await client.endAsync();
});

test("connectAsync rejects when the first attempt fails and retries are not allowed", async () => {
  await assert.rejects(
    within(connectAsync("ws://127.0.0.1:1/mqtt", { connectTimeout: 2000 }, false), 10_000, "rejection"),
    /Couldn't connect|refused|failed|closed|lost/i);
});

test("option mistakes throw from connect(), like MQTT.js; manualConnect waits", async () => {
  assert.throws(() => connect(gw.wsUrl, { protocolVersion: 3 }), TypeError);
  assert.throws(() => connect("http://example.invalid"), TypeError);
  // Checked by the wasm side when the client is created, still from connect().
  assert.throws(() => connect(gw.wsUrl, { keepalive: "30" }), /keepalive/);
  const client = connect(gw.wsUrl, { manualConnect: true });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(client.connected, false);
  client.connect();
  await once(client, "connect");
  // MQTT.js's argument shuffles: end(cb), end(force, cb), end(force, opts, cb).
  await new Promise((resolve) => client.end(false, resolve));
  await new Promise((resolve) => client.end(resolve)); // already ended: called at once
});

test("the URL forms: mqtt:// maps to ws:// with the /mqtt path, options give host and port", async () => {
  const [host, port] = new URL(gw.wsUrl).host.split(":");
  for (const args of [[`mqtt://${host}:${port}`], [{ protocol: "ws", host, port: Number(port) }]]) {
    const client = await connectAsync(...args);
    assert.equal(client.connected, true);
    await client.endAsync();
  }
});

// The bundler build imports its .wasm as an ES module, which bundlers (and Node with a flag)
// understand; run the compat entry on it in a child Node with that flag.
test("aviary-mqtt/compat/bundler works where .wasm imports do", async () => {
  const script = `
    import WebSocket from "ws";
    globalThis.WebSocket = WebSocket;
    const { default: mqtt } = await import("aviary-mqtt/compat/bundler");
    const client = await mqtt.connectAsync(process.argv[1]);
    client.on("message", async (topic, message) => {
      console.log(topic + " " + message.toString());
      await client.endAsync();
    });
    await client.subscribeAsync("compat/bundler", { qos: 1 });
    client.publish("compat/bundler", "from the bundler build", { qos: 1 });`;
  const cwd = fileURLToPath(new URL("..", import.meta.url));
  const args = ["--experimental-wasm-modules", "--no-warnings", "--input-type=module", "-e", script, gw.wsUrl];
  const out = await new Promise((resolve, reject) => execFile(process.execPath, args,
    { cwd, timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout))));
  assert.equal(out.trim(), "compat/bundler from the bundler build");
});

test("subscribe and unsubscribe properties, MQTT.js style: the subscription identifier comes back", async () => {
  const topic = unique("sid");
  const client = await connectAsync(gw.wsUrl, { protocolVersion: 5 });
  await client.subscribeAsync(topic, { qos: 1, properties: { subscriptionIdentifier: 7, userProperties: { a: "b" } } });
  const got = once(client, "message");
  await client.publishAsync(topic, "tagged", { qos: 1 });
  const [, payload, packet] = await got;
  assert.equal(payload.toString(), "tagged");
  assert.equal(packet.properties.subscriptionIdentifier, 7);
  await client.unsubscribeAsync(topic, { properties: { userProperties: { a: "b" } } });
  await client.endAsync();
});

test("end(false) delivers QoS 1 publishes in flight; a later end(true) cuts the wait short", async () => {
  const topic = unique("end-many");
  const count = 200; // more than the gateway's Receive Maximum (128)
  const watcher = await mqtt.connectAsync(gw.mqttUrl);
  await watcher.subscribeAsync(`${topic}/#`, { qos: 1 });
  const seen = { graceful: 0, forced: 0 };
  watcher.on("message", (t) => seen[t.split("/").pop()]++);
  for (const mode of ["graceful", "forced"]) {
    const client = await connectAsync(gw.wsUrl, { protocolVersion: 5 });
    const errors = [];
    for (let i = 0; i < count; i++) {
      client.publish(`${topic}/${mode}`, String(i), { qos: 1 }, (err) => err && errors.push(err.code));
    }
    const ended = new Promise((resolve) => client.end(false, resolve));
    if (mode === "forced") client.end(true);
    await within(ended, 10_000, `end (${mode})`);
    await new Promise((resolve) => setImmediate(resolve));
    if (mode === "graceful") assert.deepEqual(errors, []);
    else assert.ok(errors.includes("CLIENT_ENDED"), "a forced end drops what waits");
  }
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.equal(seen.graceful, count);
  assert.ok(seen.forced < count, `forced: ${seen.forced}`);
  await watcher.endAsync();
});
