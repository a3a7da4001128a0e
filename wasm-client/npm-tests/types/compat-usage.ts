// MQTT.js-style TypeScript against aviary-mqtt/compat's declarations: it must type-check
// under `strict` (test/compat-types.test.mjs runs tsc), and the `@ts-expect-error` lines show
// the types are real, not `any`. Never run.
import mqtt, { connect, connectAsync, MqttClient, type IClientOptions, type ISubscriptionGrant } from "aviary-mqtt/compat";

const options: IClientOptions = {
  clientId: "tracker-pet-123",
  username: "device",
  password: "device-token",
  clean: false,
  keepalive: 30,
  reconnectPeriod: 1000,
  connectTimeout: 30_000,
  protocolVersion: 5,
  properties: { sessionExpiryInterval: 3600 },
  will: { topic: "pets/123/status", payload: JSON.stringify({ online: false }), qos: 1, retain: true },
};

const client: MqttClient = mqtt.connect("mqtt://broker.example", options);
client.on("connect", (connack) => {
  const present: boolean = connack.sessionPresent;
  client.publish("pets/123/status", JSON.stringify({ online: present }), { qos: 1, retain: true });
  client.subscribe("pets/+/location", { qos: 1 }, (err, granted) => {
    if (err) throw err;
    const first: ISubscriptionGrant | undefined = granted?.[0];
    console.log(first?.topic, first?.qos);
  });
  client.subscribe(["a", "b"]);
  client.subscribe({ "pets/+/status": { qos: 1 } });
});
client.on("message", (topic, message, packet) => {
  const data: unknown = JSON.parse(message.toString());
  const qos: 0 | 1 | 2 = packet.qos;
  console.log(topic, data, qos, message.toString("hex"));
});
client.once("error", (error) => console.error(error.message));
client.on("close", () => {}).on("offline", () => {}).on("reconnect", () => {}).on("end", () => {});
client.unsubscribe("a", (err) => console.log(err));
client.end();
client.end(true, () => {});
client.end(false, {}, () => {});

async function promises(): Promise<void> {
  const c = await connectAsync("ws://localhost:8080/mqtt", { clientId: "x" });
  const granted: ISubscriptionGrant[] = await c.subscribeAsync("t", { qos: 2 });
  await c.publishAsync("t", new Uint8Array([1, 2]), { qos: 1 });
  await c.unsubscribeAsync(granted.map((g) => g.topic));
  await c.endAsync();
  const d: MqttClient = connect({ protocol: "ws", host: "localhost", port: 8080 });
  d.end();
}
void promises;

// @ts-expect-error: not an event
client.on("no-such-event", () => {});
// @ts-expect-error: MQTT 3.1 is not offered
connect("ws://x", { protocolVersion: 3 });
// @ts-expect-error: a topic is a string
client.publish(42, "x");
