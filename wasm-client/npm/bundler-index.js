// Bundler entry point (`aviary-mqtt/bundler`): the wasm is instantiated by the bundler's
// WebAssembly/ESM integration (webpack 5 `experiments.asyncWebAssembly`), so `init` is a no-op.
export * from "./aviary_mqtt.js";

/** Nothing to initialise with a bundler; kept so `await init()` works everywhere. */
export default async function init() {}
