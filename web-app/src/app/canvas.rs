//! A `<canvas>` laid over the Leaflet map, the size of the map's container, for drawing
//! thousands of pets in a few calls per frame instead of one DOM element (or SVG path) each.
//!
//! It sits in the map's container, above the map pane (z-index 400, where tiles, outlines and
//! safe zones are) and below the controls (z-index 1000). It ignores the pointer, so dragging
//! and zooming reach Leaflet; clicks are hit-tested by the map view. Leaflet's zoom animation
//! scales the map pane with CSS, which a canvas outside it cannot follow: it is hidden for the
//! length of the animation and redrawn at the new zoom.

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlElement};

use super::browser::window;

/// One overlay canvas and its 2D context.
#[derive(Debug)]
pub(crate) struct Overlay {
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    /// CSS pixels and device pixel ratio it was last sized for.
    size: (f64, f64, f64),
}

impl Overlay {
    /// Adds a canvas with class `class` to `container`, stacked at `z_index`.
    pub(crate) fn new(container: &HtmlElement, class: &str, z_index: u32) -> Result<Self, JsValue> {
        let document = window().document().ok_or("no document")?;
        let canvas: HtmlCanvasElement = document.create_element("canvas")?.dyn_into()?;
        canvas.set_class_name(class);
        canvas.set_attribute(
            "style",
            &format!("position:absolute;left:0;top:0;pointer-events:none;z-index:{z_index}"),
        )?;
        container.append_child(&canvas)?;
        let ctx: CanvasRenderingContext2d = canvas
            .get_context("2d")?
            .ok_or("no 2d context")?
            .dyn_into()?;
        Ok(Self {
            canvas,
            ctx,
            size: (0.0, 0.0, 0.0),
        })
    }

    /// Sizes the canvas to `width` x `height` CSS pixels (sharp on high-DPI screens); returns
    /// the context, drawing in CSS pixels, and whether the canvas was resized (which clears
    /// it). What was drawn before stays otherwise: callers clear what they redraw.
    pub(crate) fn prepare(&mut self, width: f64, height: f64) -> (&CanvasRenderingContext2d, bool) {
        let dpr = window().device_pixel_ratio().max(1.0);
        let resized = self.size != (width, height, dpr);
        if resized {
            self.size = (width, height, dpr);
            self.canvas.set_width((width * dpr).round() as u32);
            self.canvas.set_height((height * dpr).round() as u32);
            let style = self.canvas.style();
            let _ = style.set_property("width", &format!("{width}px"));
            let _ = style.set_property("height", &format!("{height}px"));
            // Resizing also resets the transform.
            let _ = self.ctx.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0);
        }
        (&self.ctx, resized)
    }

    /// Shows or hides the canvas (hidden during a zoom animation).
    pub(crate) fn set_visible(&self, visible: bool) {
        let _ = self
            .canvas
            .style()
            .set_property("visibility", if visible { "visible" } else { "hidden" });
    }

    /// Takes the canvas out of the page.
    pub(crate) fn remove(&self) {
        self.canvas.remove();
    }
}
