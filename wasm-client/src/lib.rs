//! Aviary's MQTT 3.1.1 / 5.0 client for the browser.
//!
//! Three layers, each usable on its own:
//! - [`engine`]: the whole client as a state machine with no I/O (tested natively);
//! - `runtime` (wasm32 only): the browser's WebSocket, a timer that background-tab throttling
//!   does not stall, the `online`/`offline` events, driving the engine for the Rust API;
//! - the APIs on top: [`Client`] for Rust (the Yew web app) and the JavaScript API (the
//!   default `js` feature): plain JavaScript in `npm/` (the client in `api.js`, the same
//!   browser runtime in `runtime.js`) over one wasm-bindgen export, [`js_api::Engine`],
//!   packaged for npm as `aviary-mqtt` by `cargo xtask npm`.

// No `std` outside tests: the crate needs only `alloc`, and the npm package (feature `npm`) is
// linked without the standard library at all. Its panic machinery formats messages with
// `core::fmt` for a hook that has nowhere to print on wasm32-unknown-unknown; without std, a
// panic is a trap and that code (2.3 KiB of the gzipped package) is gone.
#![cfg_attr(not(test), no_std)]

extern crate alloc;
// Every other build links std: native ones, the browser tests' harness, and applications
// (the Yew web app) that bring it anyway.
#[cfg(not(any(test, all(target_arch = "wasm32", feature = "npm"))))]
extern crate std;

pub mod engine;
// The JavaScript API's wire format; compiled everywhere so that its tests run natively.
#[cfg_attr(not(all(target_arch = "wasm32", feature = "js")), allow(dead_code))]
mod fields;
// Used by the browser layers only; compiled everywhere so that its tests run natively.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod text;

pub use aviary_protocol as protocol;
pub use engine::{ErrorKind, MqttError, Options};

#[cfg(target_arch = "wasm32")]
mod runtime;

/// The npm package's allocator: lol_alloc's free list instead of std's dlmalloc, which is
/// about 7 KB of the module (2.9 KiB of the gzipped package, measured with `cargo xtask npm`).
/// A browser client holds few, small allocations, so a first-fit list that is short in
/// practice costs nothing noticeable. The spin lock is never contended on single-threaded
/// wasm; it is there because the lock-free `AssumeSingleThreaded` (and talc) would need
/// `unsafe`, which the workspace forbids. Only with the `js` feature: a Rust application
/// (the Yew web app) picks its own allocator.
#[cfg(all(target_arch = "wasm32", feature = "js"))]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// A panic in the npm package traps at once (`unreachable`), as std's handler does after its
/// hook under `panic = "abort"`; that hook's message went to a stderr that wasm32-unknown-unknown
/// does not have, so nothing a user could see is lost.
#[cfg(all(target_arch = "wasm32", feature = "npm"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

// Not in the npm build: nothing there uses the Rust API, and though the linker drops its code,
// the descriptors wasm-bindgen reads for its closures are exports, which keep each closure's
// shim in the function table (about 2 KB of the module).
#[cfg(all(target_arch = "wasm32", not(feature = "npm")))]
mod rust_api;

#[cfg(all(target_arch = "wasm32", not(feature = "npm")))]
pub use rust_api::{Client, ClientEvent, Completion, EventStream, Message};
/// The wasm side of the JavaScript API; behind the default `js` feature, which Rust users can
/// turn off.
#[cfg(all(target_arch = "wasm32", feature = "js"))]
pub mod js_api;
