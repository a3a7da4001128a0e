//! The browser's `online` / `offline` events and `navigator.onLine`.
//!
//! Retrying while the browser knows it is offline only burns battery, and waiting out a long
//! backoff after it comes back online wastes the user's time; the engine does neither when
//! told. Environments without these events (Node) simply count as always online.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

/// Listens for `online`/`offline` on the global object while alive.
pub(crate) struct NetworkWatch {
    target: EventTarget,
    on_online: Closure<dyn FnMut()>,
    on_offline: Closure<dyn FnMut()>,
}

impl NetworkWatch {
    /// Calls `on_change(true)` on `online` and `on_change(false)` on `offline`; `None` where
    /// the global object has no `addEventListener`.
    pub(crate) fn new(on_change: impl Fn(bool) + 'static) -> Option<Self> {
        let global = super::global();
        let add = Reflect::get(&global, &"addEventListener".into()).ok()?;
        if !add.is_function() {
            return None;
        }
        let target: EventTarget = global.unchecked_into();
        let on_change = alloc::rc::Rc::new(on_change);
        let online = on_change.clone();
        let on_online = Closure::<dyn FnMut()>::new(move || online(true));
        let on_offline = Closure::<dyn FnMut()>::new(move || on_change(false));
        target
            .add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref())
            .ok()?;
        target
            .add_event_listener_with_callback("offline", on_offline.as_ref().unchecked_ref())
            .ok()?;
        Some(Self {
            target,
            on_online,
            on_offline,
        })
    }
}

impl Drop for NetworkWatch {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback("online", self.on_online.as_ref().unchecked_ref());
        let _ = self.target.remove_event_listener_with_callback(
            "offline",
            self.on_offline.as_ref().unchecked_ref(),
        );
    }
}

/// `navigator.onLine`, or `true` where there is no such thing.
pub(crate) fn is_online() -> bool {
    Reflect::get(&super::global(), &"navigator".into())
        .ok()
        .filter(|n| n.is_object())
        .and_then(|n| Reflect::get(&n, &"onLine".into()).ok())
        .and_then(|v| v.as_bool())
        .unwrap_or(true)
}
