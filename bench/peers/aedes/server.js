// Aedes for `cargo xtask bench`: one broker on a TCP port and a WebSocket port, configured as
// close to the other brokers under test as Aedes allows.
//
//   node server.js --mqtt 127.0.0.1:PORT --ws 127.0.0.1:PORT [--queue-limit N]
//   node server.js --version
//
// Prints one `listening mqtt=ADDR ws=ADDR` line once both listeners accept connections;
// everything else it would log is left out, as the other brokers log only warnings.
//
// Limits, compared with the other brokers (bench/src/broker/peers.rs says the same):
// - TCP_NODELAY: set on every socket, TCP and WebSocket, as Aviary does.
// - In-flight window: Aedes has no per-client window for outgoing QoS 1 messages; what it
//   delivers at once is bounded broker-wide by `concurrency` (left at its default, 100).
// - Queue length: Aedes has no per-client queue limit for a connected client; `queueLimit` only
//   bounds what a client sends before its session is set up, and is raised to the others'
//   queue length so that limit is not what a fast publisher hits first.

import http from 'node:http'
import net from 'node:net'
import { readFileSync } from 'node:fs'

import { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'

/** The value after `--name` in argv, or the environment variable, or `fallback`. */
function option (name, env, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  if (at >= 0 && at + 1 < process.argv.length) return process.argv[at + 1]
  return process.env[env] ?? fallback
}

/** `HOST:PORT` as `{ host, port }`. */
function address (text, what) {
  const colon = text?.lastIndexOf(':') ?? -1
  const port = Number(text?.slice(colon + 1))
  if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--${what} wants HOST:PORT, got ${JSON.stringify(text)}`)
  }
  return { host: text.slice(0, colon), port }
}

/** Resolves once `server` listens on `where`. */
function listen (server, where) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(where.port, where.host, () => {
      server.off('error', reject)
      const bound = server.address()
      resolve(`${bound.address}:${bound.port}`)
    })
  })
}

async function main () {
  if (process.argv.includes('--version')) {
    // Aedes' `exports` hide its package.json from `import`; the installed file says it.
    const manifest = new URL('./node_modules/aedes/package.json', import.meta.url)
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'))
    console.log(`aedes ${version} (node ${process.version})`)
    return
  }
  const mqtt = address(option('mqtt', 'AEDES_MQTT', '127.0.0.1:1883'), 'mqtt')
  const ws = address(option('ws', 'AEDES_WS', '127.0.0.1:8080'), 'ws')
  const queueLimit = Number(option('queue-limit', 'AEDES_QUEUE_LIMIT', '1000000'))

  const broker = await Aedes.createBroker({ queueLimit })

  const tcp = net.createServer({ noDelay: true }, broker.handle)
  const web = http.createServer({ noDelay: true })
  // Subprotocol `mqtt` (MQTT 5.0 section 6), or `mqttv3.1`, echoed as the client offered it.
  const wss = new WebSocketServer({
    server: web,
    handleProtocols: (offered) => ['mqtt', 'mqttv3.1'].find((p) => offered.has(p)) ?? false
  })
  wss.on('connection', (socket, request) => {
    // A duplex stream of the socket's binary frames: packets may span frames and one frame
    // may hold several packets, which Aedes' parser handles like a TCP stream.
    broker.handle(createWebSocketStream(socket), request)
  })

  const [mqttAt, wsAt] = [await listen(tcp, mqtt), await listen(web, ws)]
  console.log(`listening mqtt=${mqttAt} ws=${wsAt}`)

  // The bench stops brokers with SIGKILL; SIGTERM (a person's Ctrl-C) closes cleanly.
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      tcp.close()
      web.close()
      broker.close(() => process.exit(0))
    })
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
