//! Time, randomness and the global object from the JavaScript environment.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: monotonic, unaffected by wall-clock changes; present in browsers,
    /// workers and Node.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// `Math.random()`. Imported here rather than through js-sys: with its `Uint8Array` gone
    /// from the JavaScript API, this was the npm build's last use of js-sys, whose descriptors
    /// kept dozens of unused closure shims in the module's function table.
    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    fn math_random() -> f64;

    /// `globalThis` (browsers, workers and Node alike), for the Rust API's runtime. Read
    /// directly rather than through `js_sys::global()`, whose fallbacks for older engines
    /// (`self`, `window`, `global`) cost four imports and their glue.
    #[cfg(not(feature = "npm"))]
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL_THIS: JsValue;
}

/// The global object.
#[cfg(not(feature = "npm"))]
pub(crate) fn global() -> JsValue {
    GLOBAL_THIS.with(JsValue::clone)
}

/// Milliseconds on a monotonic clock, the engine's notion of "now".
pub(crate) fn now_ms() -> u64 {
    performance_now() as u64
}

/// 53 random bits from `Math.random()`, to seed jitter and client ids.
pub(crate) fn random_seed() -> u64 {
    (math_random() * (1u64 << 53) as f64) as u64
}
