// The tiny app every bundler builds: connects to the gateway named in the page's query string
// (`?ws=ws://…/mqtt`), subscribes, publishes to itself and reports on the page (#status is
// "ok" or "failed: …"), which is what the Playwright test waits for.

/**
 * Runs the round trip with the entry point's `init` and `connect` (each entry file imports the
 * package its own way); `initOptions` is what `init()` gets (esbuild passes the .wasm URL).
 */
export async function run({ init, connect }, initOptions) {
  const status = document.getElementById("status");
  try {
    await init(initOptions);
    const url = new URLSearchParams(location.search).get("ws");
    const client = await connect(url, { clientId: `bundler-test-${Date.now()}` });
    const topic = "bundler-tests/echo";
    const received = new Promise((resolve) => {
      client.on("message", (t, payload) => resolve(`${t} ${new TextDecoder().decode(payload)}`));
    });
    await client.subscribe(topic, { qos: 1 }); // resolves on SUBACK, so the publish comes back
    await client.publish(topic, "hello from a bundle", { qos: 1 });
    const message = await received;
    await client.end();
    status.textContent = message === `${topic} hello from a bundle` ? "ok" : `failed: got ${message}`;
  } catch (err) {
    status.textContent = `failed: ${err?.stack ?? err}`;
  }
}
