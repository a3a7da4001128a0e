// MQTT.js over WebSocket (ws://HOST:PORT/mqtt) against the real gateway, in
// every protocol version MQTT.js speaks: connect, subscribe, publish at QoS
// 0, 1 and 2, and receive. MQTT.js offers the `mqtt` subprotocol (`mqttv3.1`
// for MQTT 3.1) and fails unless the gateway echoes it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connect, end, inbox, publish, startGateway, subscribe } from './gateway.mjs';

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  await gw?.stop();
});

const versions = [
  { name: 'MQTT 3.1.1', options: { protocolVersion: 4 } },
  { name: 'MQTT 5.0', options: { protocolVersion: 5 } },
  { name: 'MQTT 3.1 (subprotocol mqttv3.1)', options: { protocolVersion: 3, protocolId: 'MQIsdp' } },
];

for (const { name, options } of versions) {
  test(`${name} over WebSocket: subscribe, publish and receive at QoS 0, 1 and 2`, async () => {
    const v = options.protocolVersion;
    const client = await connect(gw.wsUrl, { ...options, clientId: `mqttjs-ws-${v}` });
    try {
      const messages = inbox(client);
      await subscribe(client, `node/ws${v}/#`, 2);
      for (const qos of [0, 1, 2]) {
        const topic = `node/ws${v}/qos${qos}`;
        await publish(client, topic, `hello at ${qos}`, { qos });
        const m = await messages.next(`the message at QoS ${qos}`);
        assert.equal(m.topic, topic);
        assert.equal(m.payload, `hello at ${qos}`);
        assert.equal(m.packet.qos, qos);
        assert.equal(m.packet.retain, false);
      }
      const clients = await (await fetch(`${gw.httpUrl}/api/v1/clients`)).json();
      const me = clients.find((c) => c.client_id === `mqttjs-ws-${v}`);
      assert.ok(me, JSON.stringify(clients));
      assert.equal(me.transport, 'ws');
      assert.equal(me.protocol_version, { 3: '3.1', 4: '3.1.1', 5: '5.0' }[v]);
    } finally {
      await end(client);
    }
  });
}
