//! One resettable wake-up timer that background-tab throttling does not stall.
//!
//! Browsers throttle `setTimeout` in hidden tabs to once a second, and after five minutes to
//! once a minute — longer than most keep-alive intervals. Dedicated workers are exempt from
//! that intensive throttling, so the timer runs in a tiny worker made from a Blob URL and
//! posts back when it fires. Where workers are unavailable (Node, a CSP without `blob:`), it
//! falls back to `setTimeout`; the engine then still pings on every incoming frame and decides
//! from timestamps, so a late timer costs a late ping, not a wrong one.

use js_sys::{Array, Function, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::{Blob, BlobPropertyBag, MessageEvent, Url, Worker};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// The worker: one timeout at a time; a negative delay only cancels.
const WORKER_SOURCE: &str =
    "let t;onmessage=e=>{clearTimeout(t);if(e.data>=0)t=setTimeout(()=>postMessage(0),e.data)}";

enum Backend {
    Worker {
        worker: Worker,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
    },
    Timeout {
        handle: Option<JsValue>,
    },
}

/// Calls `on_fire` once after each [`schedule`](Timer::schedule), unless rescheduled first.
pub(crate) struct Timer {
    backend: Backend,
    on_fire: Closure<dyn FnMut()>,
}

impl Timer {
    /// A timer calling `on_fire`; in a worker when the environment allows one.
    pub(crate) fn new(on_fire: impl FnMut() + 'static) -> Self {
        let on_fire = Closure::<dyn FnMut()>::new(on_fire);
        let backend = spawn_worker(&on_fire).unwrap_or(Backend::Timeout { handle: None });
        Self { backend, on_fire }
    }

    /// Whether the timer runs in a worker (immune to intensive throttling).
    pub(crate) fn in_worker(&self) -> bool {
        matches!(self.backend, Backend::Worker { .. })
    }

    /// Fires after `delay_ms`, replacing any earlier schedule.
    pub(crate) fn schedule(&mut self, delay_ms: u64) {
        match &mut self.backend {
            Backend::Worker { worker, .. } => {
                let _ = worker.post_message(&JsValue::from_f64(delay_ms as f64));
            }
            Backend::Timeout { handle } => {
                if let Some(old) = handle.take() {
                    clear_timeout(&old);
                }
                let f: &Function = self.on_fire.as_ref().unchecked_ref();
                *handle = Some(set_timeout(f, delay_ms as f64));
            }
        }
    }

    /// Cancels the pending wake-up, if any.
    pub(crate) fn cancel(&mut self) {
        match &mut self.backend {
            Backend::Worker { worker, .. } => {
                let _ = worker.post_message(&JsValue::from_f64(-1.0));
            }
            Backend::Timeout { handle } => {
                if let Some(old) = handle.take() {
                    clear_timeout(&old);
                }
            }
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.cancel();
        if let Backend::Worker { worker, .. } = &self.backend {
            worker.set_onmessage(None);
            worker.terminate();
        }
    }
}

fn spawn_worker(on_fire: &Closure<dyn FnMut()>) -> Option<Backend> {
    let has_worker = Reflect::get(&super::global(), &"Worker".into())
        .ok()
        .is_some_and(|w| w.is_function());
    if !has_worker {
        return None;
    }
    let options = BlobPropertyBag::new();
    options.set_type("text/javascript");
    let parts = Array::of1(&WORKER_SOURCE.into());
    let blob = Blob::new_with_str_sequence_and_options(&parts, &options).ok()?;
    let url = Url::create_object_url_with_blob(&blob).ok()?;
    let worker = Worker::new(&url);
    let _ = Url::revoke_object_url(&url);
    let worker = worker.ok()?;
    let fire: Function = on_fire.as_ref().clone().unchecked_into();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |_event: MessageEvent| {
        let _ = fire.call0(&JsValue::UNDEFINED);
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    Some(Backend::Worker {
        worker,
        _on_message: on_message,
    })
}
