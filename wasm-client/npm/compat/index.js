// `aviary-mqtt/compat`'s functions, bound to one build of the client: each entry point (web,
// bundler, node) passes how it gets aviary-mqtt's `createClient` (now, or once the .wasm has
// loaded) and re-exports what this returns under MQTT.js's names.

import { MqttClient } from "./client.js";

export { MqttClient };
export { MqttPayload } from "./payload.js";

/** `load()` returns `createClient`, or a promise of it while the wasm loads. */
export function bindCompat(load) {
  /** mqtt.connect(url, [options]) or mqtt.connect(options): a client, connecting. */
  function connect(url, options) {
    return new MqttClient(load, url, options);
  }

  /**
   * Resolves with the client on its first `connect` (or `end`), rejects on the first
   * `error`, ending the client; with `allowRetries === false` a failed first attempt
   * (`close` before `connect`) rejects too. As MQTT.js's `connectAsync`.
   */
  function connectAsync(url, options, allowRetries = true) {
    if (url !== null && typeof url === "object") {
      [url, options, allowRetries] = [undefined, url, options ?? true]; // connectAsync(options, allowRetries)
    }
    return new Promise((resolve, reject) => {
      const client = connect(url, options);
      const listeners = {
        connect: () => { remove(); resolve(client); },
        end: () => { remove(); resolve(client); },
        error: (err) => { remove(); client.end(); reject(err); },
      };
      if (allowRetries === false) {
        listeners.close = () => listeners.error(new Error("Couldn't connect to server"));
      }
      const remove = () => {
        for (const [event, f] of Object.entries(listeners)) client.off(event, f);
      };
      for (const [event, f] of Object.entries(listeners)) client.on(event, f);
    });
  }

  return { connect, connectAsync, MqttClient, Client: MqttClient };
}
