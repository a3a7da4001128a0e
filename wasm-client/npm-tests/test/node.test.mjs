// The packed aviary-mqtt package in Node, through its public API only, against the real gateway
// and an independent TCP device (MQTT.js over TCP).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import mqtt from "mqtt";
import init, { connect } from "aviary-mqtt";
import { startGateway, once, within } from "../lib/gateway.mjs";

// Node 20 has no global WebSocket; the package uses whatever `globalThis.WebSocket` is.
globalThis.WebSocket = WebSocket;

let gw;
const text = (bytes) => new TextDecoder().decode(bytes);
const unique = (name) => `npm-node/${Math.random().toString(36).slice(2)}/${name}`;

before(async () => {
  await init();
  gw = await startGateway();
});
after(() => gw.stop());

test("QoS 0, 1 and 2 both ways, MQTT 3.1.1 and 5", async () => {
  for (const protocolVersion of [4, 5]) {
    const topic = unique("qos");
    const sub = await connect(gw.wsUrl, { protocolVersion });
    const granted = await sub.subscribe(`${topic}/#`, { qos: 2 });
    assert.deepEqual(granted, [{ topic: `${topic}/#`, qos: 2 }]);
    const pub = await connect(gw.wsUrl, { protocolVersion });
    for (const qos of [0, 1, 2]) {
      const got = once(sub, "message");
      await pub.publish(`${topic}/${qos}`, new Uint8Array([qos, 1, 2]), { qos });
      const [t, payload, packet] = await got;
      assert.equal(t, `${topic}/${qos}`);
      assert.ok(payload instanceof Uint8Array);
      assert.deepEqual([...payload], [qos, 1, 2]);
      assert.equal(packet.qos, qos);
      assert.equal(packet.cmd, "publish");
    }
    await sub.end();
    await pub.end();
  }
});

test("messages cross between the WebSocket client and a TCP device", async () => {
  const topic = unique("pets/7");
  const device = await mqtt.connectAsync(gw.mqttUrl, { clientId: "tracker-7" });
  await device.subscribeAsync(`${topic}/cmd`, { qos: 1 });
  const web = await connect(gw.wsUrl, { protocolVersion: 5 });
  await web.subscribe(`${topic}/location`, { qos: 1 });

  const location = once(web, "message");
  await device.publishAsync(`${topic}/location`, JSON.stringify({ lat: 1, lng: 2 }), { qos: 1 });
  const [, payload] = await location;
  assert.deepEqual(JSON.parse(text(payload)), { lat: 1, lng: 2 });

  const command = once(device, "message");
  await web.publish(`${topic}/cmd`, "beep", { qos: 1 });
  const [t, p] = await command;
  assert.equal(t, `${topic}/cmd`);
  assert.equal(p.toString(), "beep");
  await web.end();
  await device.endAsync();
});

test("retained messages and the will of a device that vanishes", async () => {
  const topic = unique("pets/9/status");
  const device = await mqtt.connectAsync(gw.mqttUrl, {
    will: { topic, payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
  });
  await device.publishAsync(topic, '{"online":true}', { qos: 1, retain: true });
  const web = await connect(gw.wsUrl, {});
  const retained = once(web, "message");
  await web.subscribe(topic, { qos: 1 });
  const [, p1, packet] = await retained;
  assert.equal(text(p1), '{"online":true}');
  assert.equal(packet.retain, true);
  const will = once(web, "message");
  device.stream.destroy(); // abrupt: no DISCONNECT
  const [, p2] = await will;
  assert.equal(text(p2), '{"online":false}');
  device.end(true);
  await web.publish(topic, "", { qos: 1, retain: true });
  await web.end();
});

test("errors are typed: invalid arguments, refused hosts, bad options", async () => {
  const client = await connect(gw.wsUrl, { protocolVersion: 5 });
  await assert.rejects(client.publish("a/+/b", "x"), (e) => {
    assert.equal(e.name, "MqttError");
    assert.equal(e.code, "INVALID_ARGUMENT");
    return e instanceof Error;
  });
  assert.throws(() => client.subscribe("a/#/b"), TypeError);
  assert.throws(() => client.unsubscribe(["ok", "a/#/b"]), TypeError);
  // The client keeps working after a call it refused.
  assert.deepEqual(await client.subscribe("ok/+"), [{ topic: "ok/+", qos: 0 }]);
  await client.end();
  await assert.rejects(client.publish("a", "x"), { code: "CLIENT_ENDED" });
  assert.throws(() => connect(gw.wsUrl, { keepalive: -1 }), TypeError);
  assert.throws(() => connect(gw.wsUrl, { will: { topic: "pets/+/status" } }), /will\.topic/);
  assert.throws(() => connect(gw.wsUrl, { protocolVersion: 3 }), /protocolVersion/);
  await assert.rejects(
    connect("ws://127.0.0.1:9/mqtt", { reconnectPeriod: 0 }),
    { name: "MqttError", code: "CONNECTION_LOST" },
  );
});

test("reconnects after the gateway restarts: resubscribes, flushes the offline queue", async () => {
  const topic = unique("restart");
  const attempts = [];
  const client = await connect(gw.wsUrl, {
    protocolVersion: 5,
    reconnectPeriod: 100,
    reconnectMaxPeriod: 500,
    transformWsUrl: async (url, attempt) => {
      attempts.push(attempt);
      return url;
    },
  });
  await client.subscribe(`${topic}/#`, { qos: 1 });
  const offline = once(client, "offline");
  await gw.stop();
  await offline;
  assert.equal(client.connected, false);
  // Published while the gateway is down: queued, sent after the reconnect.
  const queued = client.publish(`${topic}/queued`, "from the queue", { qos: 1 });
  assert.equal(client.queuedCount, 1);
  const reconnected = once(client, "connect", 20_000);
  const message = once(client, "message", 20_000);
  await gw.restart();
  await reconnected;
  await within(queued, 10_000, "PUBACK of the queued message");
  const [t, p] = await message; // the client resubscribed, so it gets its own message
  assert.equal(t, `${topic}/queued`);
  assert.equal(text(p), "from the queue");
  assert.ok(attempts.length >= 2 && attempts[0] === 1, `transformWsUrl attempts: ${attempts}`);
  await client.end();
});

test("a subscription identifier comes back with every message it matches (MQTT 5)", async () => {
  const topic = unique("sid");
  const sub = await connect(gw.wsUrl, { protocolVersion: 5 });
  await sub.subscribe(`${topic}/#`, { qos: 1, subscriptionIdentifier: 7, userProperties: { app: "map" } });
  await sub.subscribe(`${topic}/+`, { qos: 1, subscriptionIdentifier: 9 });
  const pub = await connect(gw.wsUrl, { protocolVersion: 5 });
  const got = once(sub, "message");
  await pub.publish(`${topic}/a/b`, "only #", { qos: 1 });
  const [, , packet] = await got;
  assert.equal(packet.properties.subscriptionIdentifier, 7);
  // Both filters match: one message with an array of both identifiers, or one message per
  // subscription (the broker may do either [MQTT-3.3.4-3]); every identifier arrives.
  const ids = [];
  const collect = (t, _p, packet) => ids.push(packet.properties.subscriptionIdentifier);
  sub.on("message", collect);
  await pub.publish(`${topic}/a`, "both", { qos: 1 });
  await new Promise((resolve) => setTimeout(resolve, 500));
  sub.off("message", collect);
  assert.deepEqual(ids.flat().sort(), [7, 9]);
  // A bad argument throws at once, as every argument check of the package does.
  assert.throws(() => sub.subscribe(topic, { subscriptionIdentifier: 0 }), TypeError);
  await sub.unsubscribe(`${topic}/#`, { userProperties: { why: "done" } });
  await sub.end();
  await pub.end();
});

test("end() waits for QoS 1 publishes in flight; end(true) drops them", async () => {
  const topic = unique("end");
  const count = 200; // more than the gateway's Receive Maximum (128): some wait in the queue
  const watcher = await mqtt.connectAsync(gw.mqttUrl);
  await watcher.subscribeAsync(`${topic}/#`, { qos: 1 });
  const seen = { graceful: 0, forced: 0 };
  watcher.on("message", (t) => seen[t.split("/").pop()]++);
  for (const mode of ["graceful", "forced"]) {
    const client = await connect(gw.wsUrl, { protocolVersion: 5 });
    const results = [];
    for (let i = 0; i < count; i++) {
      results.push(client.publish(`${topic}/${mode}`, String(i), { qos: 1 }).then(() => "ok", (e) => e.code));
    }
    await within(client.end(mode === "forced"), 10_000, `end() (${mode})`);
    await assert.rejects(client.publish(topic, "after"), (e) => e.code === "CLIENT_ENDED");
    const outcomes = await Promise.all(results);
    if (mode === "graceful") {
      assert.ok(outcomes.every((o) => o === "ok"), outcomes.join());
    } else {
      assert.ok(outcomes.includes("CLIENT_ENDED"), "a forced end drops what waits");
    }
  }
  // Let the broker deliver everything it accepted.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.equal(seen.graceful, count);
  assert.ok(seen.forced < count, `forced: ${seen.forced}`);
  await watcher.endAsync();
});
