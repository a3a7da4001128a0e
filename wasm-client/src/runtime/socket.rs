//! A WebSocket that owns its event handlers, in the style of gloo-net's.
//!
//! The handlers are Rust closures kept alive by this struct; dropping it detaches them first
//! and then closes the socket, so a replaced socket can never report events into the engine
//! again — one of the ways the client guarantees there is never more than one live socket.

use alloc::string::String;
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// An open (or opening) WebSocket speaking MQTT.
pub(crate) struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

#[wasm_bindgen]
extern "C" {
    /// The `error` handler every socket shares: `Function.prototype`, a function that takes
    /// anything and does nothing. An `error` event is always followed by `close`, which carries
    /// the details; the handler exists because Node's `ws` polyfill throws on an unhandled
    /// `error` — including one fired after a connecting socket is closed and dropped, which is
    /// why it must outlive every socket. A JavaScript function, not a Rust closure: the
    /// package has no `std`, so no `thread_local!` to keep a closure in.
    #[wasm_bindgen(thread_local_v2, js_namespace = Function, js_name = prototype)]
    static IGNORE_ERROR: js_sys::Function;
}

impl Socket {
    /// Opens `url` with subprotocol `mqtt`, binary frames as `ArrayBuffer`s.
    pub(crate) fn open(
        url: &str,
        on_open: impl FnMut() + 'static,
        mut on_data: impl FnMut(Uint8Array) + 'static,
        mut on_close: impl FnMut(String) + 'static,
    ) -> Result<Self, JsValue> {
        let ws = WebSocket::new_with_str(url, "mqtt")?;
        // ArrayBuffer, not Blob: a Blob needs an async read per frame.
        ws.set_binary_type(BinaryType::Arraybuffer);
        let on_open = Closure::<dyn FnMut()>::new(on_open);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            // Text frames are not MQTT [MQTT-6.0.0-1]; they are ignored.
            if let Ok(buffer) = event.data().dyn_into::<ArrayBuffer>() {
                on_data(Uint8Array::new(&buffer));
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            let reason = event.reason();
            let code = crate::text::decimal(u32::from(event.code()));
            let detail = if reason.is_empty() {
                crate::text::concat(&["WebSocket closed (code ", &code, ")"])
            } else {
                crate::text::concat(&["WebSocket closed (code ", &code, ": ", &reason, ")"])
            };
            on_close(detail);
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        IGNORE_ERROR.with(|f| ws.set_onerror(Some(f)));
        Ok(Self {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Sends one binary frame. Errors (socket already closing) are ignored: the close event
    /// that follows reports the loss.
    pub(crate) fn send(&self, bytes: &[u8]) {
        let _ = self.ws.send_with_u8_array(bytes);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
