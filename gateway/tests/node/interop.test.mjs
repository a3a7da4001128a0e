// MQTT.js clients on both front doors of one gateway: a TCP client
// (mqtt://) and a WebSocket client (ws://.../mqtt) exchange messages both
// ways, retained messages set on one side reach the other, and the will of
// a WebSocket client whose stream dies is delivered to a TCP subscriber.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connect, end, inbox, publish, startGateway, subscribe, within, WAIT_MS } from './gateway.mjs';

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  await gw?.stop();
});

for (const [tcpVersion, wsVersion] of [[4, 5], [5, 4]]) {
  test(`TCP (MQTT ${tcpVersion}) and WebSocket (MQTT ${wsVersion}) clients exchange messages both ways`, async () => {
    const tag = `${tcpVersion}${wsVersion}`;
    const tcp = await connect(gw.tcpUrl, { protocolVersion: tcpVersion, clientId: `tcp-${tag}` });
    const ws = await connect(gw.wsUrl, { protocolVersion: wsVersion, clientId: `ws-${tag}` });
    try {
      const toTcp = inbox(tcp);
      const toWs = inbox(ws);
      await subscribe(tcp, `x${tag}/to-tcp/#`, 2);
      await subscribe(ws, `x${tag}/to-ws/#`, 2);
      for (const qos of [0, 1, 2]) {
        await publish(tcp, `x${tag}/to-ws/${qos}`, `from tcp at ${qos}`, { qos });
        let m = await toWs.next(`tcp -> ws at QoS ${qos}`);
        assert.deepEqual([m.topic, m.payload, m.packet.qos], [`x${tag}/to-ws/${qos}`, `from tcp at ${qos}`, qos]);

        await publish(ws, `x${tag}/to-tcp/${qos}`, `from ws at ${qos}`, { qos });
        m = await toTcp.next(`ws -> tcp at QoS ${qos}`);
        assert.deepEqual([m.topic, m.payload, m.packet.qos], [`x${tag}/to-tcp/${qos}`, `from ws at ${qos}`, qos]);
      }
    } finally {
      await end(tcp);
      await end(ws);
    }
  });
}

test('retained messages cross between TCP and WebSocket', async () => {
  const tcpPub = await connect(gw.tcpUrl, { clientId: 'retain-tcp' });
  const wsPub = await connect(gw.wsUrl, { protocolVersion: 5, clientId: 'retain-ws' });
  // QoS 1: the PUBACK means the broker has stored them.
  await publish(tcpPub, 'retained/by-tcp', '{"online":true}', { qos: 1, retain: true });
  await publish(wsPub, 'retained/by-ws', 'set over ws', { qos: 1, retain: true });
  await end(tcpPub);
  await end(wsPub);

  const wsSub = await connect(gw.wsUrl, { clientId: 'late-ws' });
  const tcpSub = await connect(gw.tcpUrl, { protocolVersion: 5, clientId: 'late-tcp' });
  try {
    const wsBox = inbox(wsSub);
    const tcpBox = inbox(tcpSub);
    await subscribe(wsSub, 'retained/by-tcp', 1);
    await subscribe(tcpSub, 'retained/by-ws', 1);
    const a = await wsBox.next('the retained message set over TCP');
    assert.deepEqual([a.topic, a.payload, a.packet.retain], ['retained/by-tcp', '{"online":true}', true]);
    const b = await tcpBox.next('the retained message set over WebSocket');
    assert.deepEqual([b.topic, b.payload, b.packet.retain], ['retained/by-ws', 'set over ws', true]);
  } finally {
    await end(wsSub);
    await end(tcpSub);
  }
});

test("a WebSocket client's will reaches a TCP subscriber when its stream is destroyed", async () => {
  const watcher = await connect(gw.tcpUrl, { clientId: 'will-watcher' });
  const wills = inbox(watcher);
  await subscribe(watcher, 'pets/+/status', 1);
  const collar = await connect(gw.wsUrl, {
    clientId: 'collar-ws',
    protocolVersion: 5,
    will: { topic: 'pets/collar-ws/status', payload: '{"online":false}', qos: 1, retain: false },
  });
  try {
    const closed = new Promise((resolve) => collar.once('close', resolve));
    collar.stream.destroy(); // no DISCONNECT, no close frame: a crash
    await within(WAIT_MS, 'the WebSocket client to notice its stream is gone', closed);
    const m = await wills.next('the will');
    assert.deepEqual([m.topic, m.payload, m.packet.qos], ['pets/collar-ws/status', '{"online":false}', 1]);
  } finally {
    collar.end(true);
    await end(watcher);
  }
});
