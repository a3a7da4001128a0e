//! Small owned wrappers over browser APIs: intervals and animation frames that cancel themselves
//! when dropped (so a hook's cleanup is just a drop, as in gloo), `fetch`, the clock and the
//! page's query string.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The page's window. Only called in a browser page, where it always exists.
pub(crate) fn window() -> web_sys::Window {
    web_sys::window().expect("the app runs in a browser window")
}

/// Wall-clock time, ms since the epoch (what payload timestamps use).
pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Monotonic time in ms, on the same clock as `requestAnimationFrame`'s argument.
pub(crate) fn perf_now() -> f64 {
    window().performance().map_or_else(now_ms, |p| p.now())
}

/// The value of `?name=` in the page's URL.
pub(crate) fn query_param(name: &str) -> Option<String> {
    let search = window().location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

/// `fetch(url)` and the response body as text; an error for a failed request or a non-2xx
/// status.
pub(crate) async fn fetch_text(url: &str) -> Result<String, String> {
    fetch_text_as(url, None).await
}

/// [`fetch_text`] with an `Authorization` header when `authorization` is given. Such a request
/// omits the browser's own credentials: a 401 then stays an error here instead of popping up
/// the browser's password dialog (which also blocks the page's input while it is up).
pub(crate) async fn fetch_text_as(
    url: &str,
    authorization: Option<&str>,
) -> Result<String, String> {
    let describe = |err: JsValue| format!("{url}: {}", js_error(&err));
    let init = web_sys::RequestInit::new();
    if let Some(value) = authorization {
        let headers = web_sys::Headers::new().map_err(describe)?;
        headers.set("Authorization", value).map_err(describe)?;
        init.set_headers(&headers);
        init.set_credentials(web_sys::RequestCredentials::Omit);
    }
    let response = JsFuture::from(window().fetch_with_str_and_init(url, &init))
        .await
        .map_err(describe)?;
    let response: web_sys::Response = response.dyn_into().map_err(describe)?;
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let text = JsFuture::from(response.text().map_err(describe)?)
        .await
        .map_err(describe)?;
    text.as_string()
        .ok_or_else(|| format!("{url}: body is not text"))
}

/// A readable message for a JS exception.
pub(crate) fn js_error(err: &JsValue) -> String {
    err.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| err.as_string())
        .unwrap_or_else(|| format!("{err:?}"))
}

/// `setInterval`, cleared on drop.
#[derive(Debug)]
pub(crate) struct Interval {
    id: i32,
    _closure: Closure<dyn FnMut()>,
}

impl Interval {
    /// Calls `f` every `ms` milliseconds until dropped.
    pub(crate) fn new(ms: i32, f: impl FnMut() + 'static) -> Self {
        let closure = Closure::<dyn FnMut()>::new(f);
        let id = window()
            .set_interval_with_callback_and_timeout_and_arguments_0(
                closure.as_ref().unchecked_ref(),
                ms,
            )
            .unwrap_or_default();
        Self {
            id,
            _closure: closure,
        }
    }
}

impl Drop for Interval {
    fn drop(&mut self) {
        window().clear_interval_with_handle(self.id);
    }
}

/// The callback of a [`FrameLoop`], which re-arms itself every frame.
type FrameCallback = Rc<RefCell<Option<Closure<dyn FnMut(f64)>>>>;

/// Calls a function on every animation frame until dropped.
#[derive(Debug)]
pub(crate) struct FrameLoop {
    handle: Rc<RefCell<i32>>,
    callback: FrameCallback,
}

impl FrameLoop {
    /// Starts calling `f(timestamp)` once per frame.
    pub(crate) fn new(mut f: impl FnMut(f64) + 'static) -> Self {
        let handle = Rc::new(RefCell::new(0));
        let callback: FrameCallback = Rc::new(RefCell::new(None));
        let (next_handle, next_callback) = (Rc::clone(&handle), Rc::clone(&callback));
        *callback.borrow_mut() = Some(Closure::new(move |timestamp: f64| {
            f(timestamp);
            // Re-arm unless the loop was dropped during `f`.
            if let Some(closure) = next_callback.borrow().as_ref() {
                *next_handle.borrow_mut() = request_frame(closure);
            }
        }));
        if let Some(closure) = callback.borrow().as_ref() {
            *handle.borrow_mut() = request_frame(closure);
        }
        Self { handle, callback }
    }
}

fn request_frame(closure: &Closure<dyn FnMut(f64)>) -> i32 {
    window()
        .request_animation_frame(closure.as_ref().unchecked_ref())
        .unwrap_or_default()
}

impl Drop for FrameLoop {
    fn drop(&mut self) {
        let _ = window().cancel_animation_frame(*self.handle.borrow());
        // Dropping the closure breaks the closure -> callback -> closure cycle. If a frame is
        // running right now, the closure is still borrowed: then it sees `None` and stops.
        if let Ok(mut callback) = self.callback.try_borrow_mut() {
            callback.take();
        }
    }
}
