// MQTT 5 enhanced authentication the MQTT.js way (`client.handleAuth = (packet, callback)`):
// the same SCRAM-SHA-512 handler (node:crypto) drives `aviary-mqtt/compat` over WebSocket and
// MQTT.js itself over TCP, against the real gateway and a password file from `aviary passwd`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import WebSocket from "ws";
import mqtt from "mqtt";
import { connect } from "aviary-mqtt/compat";
import { startGatewayWithUsers, once } from "../lib/gateway.mjs";

globalThis.WebSocket = WebSocket;
const METHOD = "SCRAM-SHA-512";

let gw;
before(async () => {
  gw = await startGatewayWithUsers({ carol: "c-secret" });
});
after(() => gw.stop());

/** MQTT.js options for SCRAM as `user`, and the handleAuth that answers the challenge. */
function scram(user, password) {
  const nonce = randomBytes(18).toString("base64");
  const bare = `n=${user},r=${nonce}`;
  const state = { challenges: 0, expected: undefined };
  const hmac = (key, msg) => createHmac("sha512", key).update(msg).digest();
  const handleAuth = (packet, callback) => {
    state.challenges += 1;
    const text = Buffer.from(packet.properties.authenticationData).toString();
    const f = Object.fromEntries(text.split(",").map((kv) => [kv[0], kv.slice(2)]));
    const salted = pbkdf2Sync(password, Buffer.from(f.s, "base64"), Number(f.i), 64, "sha512");
    const clientKey = hmac(salted, "Client Key");
    const withoutProof = `c=biws,r=${f.r}`;
    const auth = `${bare},${text},${withoutProof}`;
    const signature = hmac(createHash("sha512").update(clientKey).digest(), auth);
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]));
    state.expected = `v=${hmac(hmac(salted, "Server Key"), auth).toString("base64")}`;
    callback(null, { cmd: "auth", reasonCode: 24, properties: {
      authenticationMethod: METHOD,
      authenticationData: Buffer.from(`${withoutProof},p=${proof.toString("base64")}`),
    } });
  };
  const options = {
    protocolVersion: 5, reconnectPeriod: 0, clientId: `scram-${nonce.slice(0, 8).replace(/\W/g, "x")}`,
    properties: { authenticationMethod: METHOD, authenticationData: Buffer.from(`n,,${bare}`) },
  };
  return { options, handleAuth, state };
}

for (const [name, start] of [
  ["aviary-mqtt/compat over WebSocket", (o) => connect(gw.wsUrl, o)],
  ["MQTT.js over TCP", (o) => mqtt.connect(gw.mqttUrl, o)],
]) {
  test(`${name}: handleAuth answers the challenge and the CONNACK carries the signature`, async () => {
    const s = scram("carol", "c-secret");
    const client = start(s.options);
    client.handleAuth = s.handleAuth;
    const [connack] = await once(client, "connect");
    assert.equal(s.state.challenges, 1);
    assert.equal(connack.properties.authenticationMethod, METHOD);
    assert.equal(Buffer.from(connack.properties.authenticationData).toString(), s.state.expected);
    await client.endAsync();
  });

  test(`${name}: a wrong password is refused with 0x87`, async () => {
    const s = scram("carol", "wrong");
    const client = start(s.options);
    client.handleAuth = s.handleAuth;
    const [error] = await once(client, "error");
    // MQTT.js puts the CONNACK reason in `code`; aviary-mqtt in `reasonCode` (`code` is a name).
    const reason = typeof error.code === "number" ? error.code : error.reasonCode;
    assert.equal(reason, 0x87, String(error));
    assert.equal(s.state.challenges, 1);
    await client.endAsync();
  });
}
