//! How pets look on the overlay canvases: markers, clusters, accuracy circles and trails.
//!
//! Markers are copied from pre-drawn sprites, one per colour: in headless Chromium's software
//! canvas, 1,000 sprite copies a frame kept 60 fps at about 40% of the main thread, where
//! 1,000 anti-aliased circles cost the whole thread (27 fps as one path, 45 fps one by one).
//! The map view redraws only the areas of markers that changed, so a frame usually copies
//! far fewer.
//! Trails and accuracy circles are one path per colour (one `stroke` for hundreds of pets).

use std::cell::RefCell;
use std::f64::consts::TAU;
use std::rc::Rc;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageBitmap};

use super::browser::window;

/// A marker's radius in CSS pixels.
pub(crate) const MARKER_R: f64 = 10.0;
/// Markers get their pet's id written in them while at most this many are drawn (text is the
/// costliest thing on a canvas, and a thousand labels overlap anyway).
pub(crate) const LABELS_UP_TO: usize = 200;
/// A label is squeezed to fit inside its marker.
const LABEL_WIDTH_PX: f64 = 18.0;

const ONLINE: &str = "#2a9d4b";
const OFFLINE: &str = "#8d99ae";
const OUTSIDE: &str = "#d7263d";
const SELECTED: &str = "#3a86ff";
const TRAIL_ONLINE: &str = "#3a86ff";
const TRAIL_OFFLINE: &str = "#8d99ae";
const CLUSTER: &str = "rgba(58, 134, 255, 0.85)";

/// A marker's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    Online,
    Offline,
    Outside,
}

impl Look {
    fn colour(self) -> &'static str {
        match self {
            Self::Online => ONLINE,
            Self::Offline => OFFLINE,
            Self::Outside => OUTSIDE,
        }
    }
}

/// A sprite's side in CSS pixels: the marker and its white rim.
const SPRITE_PX: f64 = 2.0 * (MARKER_R + 2.0);

/// One pre-drawn marker per [`Look`], at the screen's pixel ratio: canvases at first, then
/// `ImageBitmap`s of them once the browser has made those (asynchronously). A bitmap is
/// immutable, so copying it needs no snapshot of a source canvas, which a canvas source may.
#[derive(Debug)]
pub(crate) struct Sprites {
    canvases: [HtmlCanvasElement; 3],
    bitmaps: Rc<RefCell<Option<[ImageBitmap; 3]>>>,
}

impl Sprites {
    /// Draws the sprites.
    pub(crate) fn new() -> Result<Self, JsValue> {
        let dpr = window().device_pixel_ratio().max(1.0);
        let make = |look: Look| -> Result<HtmlCanvasElement, JsValue> {
            let document = window().document().ok_or("no document")?;
            let canvas: HtmlCanvasElement = document.create_element("canvas")?.dyn_into()?;
            let side = (SPRITE_PX * dpr).ceil() as u32;
            canvas.set_width(side);
            canvas.set_height(side);
            let ctx: CanvasRenderingContext2d = canvas
                .get_context("2d")?
                .ok_or("no 2d context")?
                .dyn_into()?;
            ctx.scale(dpr, dpr)?;
            ctx.begin_path();
            circle(&ctx, SPRITE_PX / 2.0, SPRITE_PX / 2.0, MARKER_R);
            ctx.set_fill_style_str(look.colour());
            ctx.fill();
            ctx.set_line_width(2.0);
            ctx.set_stroke_style_str("#ffffff");
            ctx.stroke();
            Ok(canvas)
        };
        let canvases = [
            make(Look::Offline)?,
            make(Look::Online)?,
            make(Look::Outside)?,
        ];
        let bitmaps = Rc::new(RefCell::new(None));
        let pending: Result<Vec<_>, JsValue> = canvases
            .iter()
            .map(|canvas| window().create_image_bitmap_with_html_canvas_element(canvas))
            .collect();
        let slot = Rc::clone(&bitmaps);
        wasm_bindgen_futures::spawn_local(async move {
            let mut made = Vec::new();
            for promise in pending.into_iter().flatten() {
                match JsFuture::from(promise)
                    .await
                    .map(JsCast::dyn_into::<ImageBitmap>)
                {
                    Ok(Ok(bitmap)) => made.push(bitmap),
                    // The canvases stay in use.
                    _ => return,
                }
            }
            if let Ok(made) = <[ImageBitmap; 3]>::try_from(made) {
                *slot.borrow_mut() = Some(made);
            }
        });
        Ok(Self { canvases, bitmaps })
    }

    /// Copies the sprite of `look` to `(x, y)`, `side` CSS pixels square.
    fn draw(&self, ctx: &CanvasRenderingContext2d, look: Look, (x, y): (f64, f64), side: f64) {
        let index = match look {
            Look::Offline => 0,
            Look::Online => 1,
            Look::Outside => 2,
        };
        let _ = match &*self.bitmaps.borrow() {
            Some(bitmaps) => {
                ctx.draw_image_with_image_bitmap_and_dw_and_dh(&bitmaps[index], x, y, side, side)
            }
            None => ctx.draw_image_with_html_canvas_element_and_dw_and_dh(
                &self.canvases[index],
                x,
                y,
                side,
                side,
            ),
        };
    }
}

/// One marker to draw, at whole pixels (a sprite is then copied, not resampled).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark<'a> {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) look: Look,
    pub(crate) selected: bool,
    /// The accuracy circle's radius in pixels.
    pub(crate) accuracy_px: f64,
    pub(crate) label: &'a str,
}

/// Accuracy circles (only those bigger than a marker: smaller ones hide under it), then the
/// markers, the selected one ringed and last, and labels when few enough.
pub(crate) fn markers(
    ctx: &CanvasRenderingContext2d,
    sprites: &Sprites,
    marks: &[Mark<'_>],
    labels: bool,
) {
    ctx.begin_path();
    for m in marks.iter().filter(|m| m.accuracy_px > MARKER_R) {
        circle(ctx, m.x, m.y, m.accuracy_px);
    }
    ctx.set_global_alpha(0.12);
    ctx.set_fill_style_str(TRAIL_ONLINE);
    ctx.fill();
    ctx.set_global_alpha(1.0);
    let half = SPRITE_PX / 2.0;
    for m in marks.iter().filter(|m| !m.selected) {
        sprites.draw(ctx, m.look, (m.x - half, m.y - half), SPRITE_PX);
    }
    ctx.set_line_width(2.0);
    ctx.set_stroke_style_str("#ffffff");
    for m in marks.iter().filter(|m| m.selected) {
        ctx.begin_path();
        circle(ctx, m.x, m.y, MARKER_R + 3.0);
        ctx.set_fill_style_str(SELECTED);
        ctx.fill();
        ctx.begin_path();
        circle(ctx, m.x, m.y, MARKER_R);
        ctx.set_fill_style_str(m.look.colour());
        ctx.fill();
        ctx.stroke();
    }
    if labels {
        ctx.set_fill_style_str("#ffffff");
        ctx.set_font("bold 10px system-ui, sans-serif");
        ctx.set_text_align("center");
        ctx.set_text_baseline("middle");
        for m in marks {
            let _ = ctx.fill_text_with_max_width(m.label, m.x, m.y, LABEL_WIDTH_PX);
        }
    }
}

impl Mark<'_> {
    /// What the marker looks like where: when it is unchanged, its pixels are too.
    pub(crate) fn key(&self) -> MarkKey {
        MarkKey {
            x: self.x as i32,
            y: self.y as i32,
            look: self.look,
            selected: self.selected,
            accuracy: self.accuracy_px.round() as i32,
        }
    }
}

/// A drawn marker's position and looks, to find the markers that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkKey {
    x: i32,
    y: i32,
    look: Look,
    selected: bool,
    accuracy: i32,
}

impl MarkKey {
    /// The pixels the marker covers: `(x, y, width, height)`.
    pub(crate) fn area(&self) -> (f64, f64, f64, f64) {
        let r = f64::from(self.accuracy).max(MARKER_R + 3.0) + 2.0;
        (
            f64::from(self.x) - r,
            f64::from(self.y) - r,
            2.0 * r,
            2.0 * r,
        )
    }
}

/// A cluster bubble of `count` pets: bigger for more pets, with the count in it.
pub(crate) fn cluster_radius(count: usize) -> f64 {
    (count as f64).log10().mul_add(5.0, 12.0)
}

/// Cluster bubbles at `(x, y, count)`.
pub(crate) fn clusters(ctx: &CanvasRenderingContext2d, bubbles: &[(f64, f64, usize)]) {
    ctx.begin_path();
    for &(x, y, count) in bubbles {
        circle(ctx, x, y, cluster_radius(count));
    }
    ctx.set_fill_style_str(CLUSTER);
    ctx.fill();
    ctx.set_line_width(2.0);
    ctx.set_stroke_style_str("#ffffff");
    ctx.stroke();
    ctx.set_fill_style_str("#ffffff");
    ctx.set_font("bold 11px system-ui, sans-serif");
    ctx.set_text_align("center");
    ctx.set_text_baseline("middle");
    for &(x, y, count) in bubbles {
        let _ = ctx.fill_text(&count.to_string(), x, y);
    }
}

/// Trails as polylines of pixel points, online ones blue and offline ones grey.
pub(crate) fn trails<'a>(
    ctx: &CanvasRenderingContext2d,
    lines: impl Iterator<Item = (bool, &'a [(f64, f64)])> + Clone,
) {
    ctx.set_line_width(3.0);
    ctx.set_line_join("round");
    ctx.set_global_alpha(0.7);
    for (online, colour) in [(false, TRAIL_OFFLINE), (true, TRAIL_ONLINE)] {
        ctx.begin_path();
        for (_, points) in lines.clone().filter(|(o, _)| *o == online) {
            let mut points = points.iter();
            if let Some(&(x, y)) = points.next() {
                ctx.move_to(x, y);
            }
            for &(x, y) in points {
                ctx.line_to(x, y);
            }
        }
        ctx.set_stroke_style_str(colour);
        ctx.stroke();
    }
    ctx.set_global_alpha(1.0);
}

fn circle(ctx: &CanvasRenderingContext2d, x: f64, y: f64, r: f64) {
    ctx.move_to(x + r, y);
    let _ = ctx.arc(x, y, r, 0.0, TAU);
}
