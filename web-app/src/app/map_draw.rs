//! One frame of pets on the overlay canvases: which are on screen, whether there are too many
//! to draw one by one (then grid clusters), and what a click there would hit.

use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use web_sys::CanvasRenderingContext2d;

use super::pet_dot::PetDot;
use super::pet_draw::{self, Look, Mark, Sprites, MARKER_R};
use super::projection::Projection;
use crate::model::cluster;
use crate::model::LatLng;

/// Above this many pets on screen, markers are clustered.
pub(crate) const MAX_MARKERS: usize = 2_000;
/// From this zoom on, every pet is drawn, however many (streets apart, clusters would hide
/// which pet is where).
const CLUSTER_BELOW_ZOOM: f64 = 18.0;
/// Cluster grid cells, in CSS pixels.
const CELL_PX: f64 = 64.0;
/// Pets this far off screen are still drawn (their accuracy circle may show).
const MARGIN_PX: f64 = 40.0;

/// Something a click can hit.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A pet's marker.
    Pet { id: Rc<str>, x: f64, y: f64 },
    /// A cluster: a click zooms to its pets' bounds (south-west, north-east).
    Cluster {
        x: f64,
        y: f64,
        r: f64,
        bounds: (LatLng, LatLng),
    },
}

/// What the last frame drew.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    /// Hit targets, topmost last.
    pub(crate) targets: Vec<Target>,
    /// Markers drawn.
    pub(crate) markers: usize,
    /// Cluster bubbles drawn.
    pub(crate) clusters: usize,
    /// Pets placed: drawn as a marker, inside a cluster, or off screen.
    pub(crate) placed: usize,
    /// Whether clusters replaced markers (then trails are not drawn either).
    pub(crate) clustered: bool,
    /// Whether markers have labels.
    pub(crate) labels: bool,
    /// Counts frames, to tell which pets a frame drew.
    pub(crate) number: u64,
}

/// Draws the markers (or clusters) of `dots` as `proj` sees them. Unless `full`, only the
/// areas of markers that changed since `last` are cleared and redrawn (a pet moving less than
/// a pixel costs nothing); clusters are always drawn afresh.
pub(crate) fn markers(
    ctx: &CanvasRenderingContext2d,
    sprites: &Sprites,
    proj: &Projection,
    dots: &HashMap<Rc<str>, PetDot>,
    selected: Option<&str>,
    (last, full): (&Frame, bool),
) -> Frame {
    let visible: Vec<Placed<'_>> = dots
        .values()
        .map(|dot| (dot, proj.px(dot.shown)))
        .filter(|(_, at)| proj.on_screen(*at, MARGIN_PX))
        .collect();
    let is_selected = |dot: &PetDot| selected == Some(&*dot.id);
    let clustered = visible.len() > MAX_MARKERS && proj.zoom < CLUSTER_BELOW_ZOOM;
    let mut frame = Frame {
        placed: dots.len(),
        clustered,
        number: last.number + 1,
        ..Frame::default()
    };
    let (mut singles, bubbles) = if clustered {
        cluster(visible, &is_selected, &mut frame)
    } else {
        (visible, Vec::new())
    };
    // Selected last: it is drawn on top, so it wins a click.
    singles.sort_by_key(|(dot, _)| is_selected(dot));
    let marks: Vec<Mark<'_>> = singles
        .iter()
        .map(|&(dot, (x, y))| Mark {
            x: x.round(),
            y: y.round(),
            look: look(dot),
            selected: is_selected(dot),
            accuracy_px: dot
                .pet
                .fix
                .map_or(0.0, |f| proj.metres_to_px(f.accuracy, dot.shown.lat)),
            label: &dot.id,
        })
        .collect();
    frame.labels = marks.len() <= pet_draw::LABELS_UP_TO;
    let full = full || clustered || last.clustered || frame.labels != last.labels;
    let changed = changed_areas(&singles, &marks, dots, frame.number);
    if full || changed.len() > MAX_AREAS {
        ctx.clear_rect(0.0, 0.0, proj.width, proj.height);
        pet_draw::markers(ctx, sprites, &marks, frame.labels);
        pet_draw::clusters(ctx, &bubbles);
    } else if !changed.is_empty() {
        redraw_areas(ctx, sprites, &marks, &changed, frame.labels);
    }
    frame.markers = marks.len();
    frame.clusters = bubbles.len();
    frame
        .targets
        .extend(singles.iter().map(|&(dot, (x, y))| Target::Pet {
            id: Rc::clone(&dot.id),
            x,
            y,
        }));
    frame
}

/// A pet and where it is on screen.
type Placed<'a> = (&'a PetDot, (f64, f64));

/// Above this many changed areas a frame is redrawn whole.
const MAX_AREAS: usize = 300;

/// Groups the visible pets into grid clusters: returns the pets drawn alone (the selected one
/// always) and the bubbles `(x, y, count)`, and adds the bubbles' hit targets to `frame`.
fn cluster<'a>(
    visible: Vec<Placed<'a>>,
    is_selected: &dyn Fn(&PetDot) -> bool,
    frame: &mut Frame,
) -> (Vec<Placed<'a>>, Vec<(f64, f64, usize)>) {
    let (mut singles, rest): (Vec<_>, Vec<_>) =
        visible.into_iter().partition(|(dot, _)| is_selected(dot));
    let points: Vec<(f64, f64)> = rest.iter().map(|(_, at)| *at).collect();
    let mut bubbles = Vec::new();
    for group in cluster::grid(&points, CELL_PX) {
        if let [only] = group.members[..] {
            singles.push(rest[only]);
            continue;
        }
        let Some(bounds) = bounds(group.members.iter().map(|&i| rest[i].0.shown)) else {
            continue;
        };
        let r = pet_draw::cluster_radius(group.members.len());
        bubbles.push((group.x, group.y, group.members.len()));
        frame.targets.push(Target::Cluster {
            x: group.x,
            y: group.y,
            r,
            bounds,
        });
    }
    (singles, bubbles)
}

/// The areas to redraw: where each marker that moved or changed was and is now, and where
/// markers no longer drawn (off screen, clustered) were. Records what frame `number` draws
/// on each pet.
fn changed_areas(
    singles: &[Placed<'_>],
    marks: &[Mark<'_>],
    dots: &HashMap<Rc<str>, PetDot>,
    number: u64,
) -> Vec<(f64, f64, f64, f64)> {
    let mut areas = Vec::new();
    for ((dot, _), mark) in singles.iter().zip(marks) {
        let key = mark.key();
        dot.drawn_in.set(number);
        if let Some(old) = dot.drawn.replace(Some(key)) {
            if old == key {
                continue;
            }
            areas.push(old.area());
        }
        areas.push(key.area());
    }
    for dot in dots.values().filter(|dot| dot.drawn_in.get() != number) {
        if let Some(old) = dot.drawn.take() {
            areas.push(old.area());
        }
    }
    areas
}

/// Clears `areas` and redraws, clipped to them, the markers that touch them.
fn redraw_areas(
    ctx: &CanvasRenderingContext2d,
    sprites: &Sprites,
    marks: &[Mark<'_>],
    areas: &[(f64, f64, f64, f64)],
    labels: bool,
) {
    let touches = |(x, y, w, h): (f64, f64, f64, f64)| {
        areas
            .iter()
            .any(|&(ax, ay, aw, ah)| x < ax + aw && ax < x + w && y < ay + ah && ay < y + h)
    };
    let redrawn: Vec<Mark<'_>> = marks
        .iter()
        .filter(|m| touches(m.key().area()))
        .copied()
        .collect();
    ctx.save();
    ctx.begin_path();
    for &(x, y, w, h) in areas {
        ctx.rect(x, y, w, h);
        ctx.clear_rect(x, y, w, h);
    }
    ctx.clip();
    pet_draw::markers(ctx, sprites, &redrawn, labels);
    ctx.restore();
}

/// Draws the trails of the pets on screen (only the selected pet's while clustered: thousands
/// of trails would be a scribble).
pub(crate) fn trails(
    ctx: &CanvasRenderingContext2d,
    proj: &Projection,
    dots: &HashMap<Rc<str>, PetDot>,
    selected: Option<&str>,
    clustered: bool,
) {
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut lines: Vec<(bool, Range<usize>)> = Vec::new();
    for dot in dots.values() {
        let trail = &dot.pet.trail;
        if trail.len() < 2 || (clustered && selected != Some(&*dot.id)) {
            continue;
        }
        let start = points.len();
        let mut seen = false;
        for point in trail {
            let at = proj.px(point.pos);
            seen |= proj.on_screen(at, MARGIN_PX);
            points.push(at);
        }
        if seen {
            lines.push((dot.pet.is_online(), start..points.len()));
        } else {
            points.truncate(start);
        }
    }
    pet_draw::trails(
        ctx,
        lines
            .iter()
            .map(|(online, range)| (*online, &points[range.clone()])),
    );
}

/// What a click at `(x, y)` hits: the topmost marker within reach, else a cluster.
pub(crate) fn hit(targets: &[Target], x: f64, y: f64) -> Option<&Target> {
    let reach = |tx: f64, ty: f64, r: f64| (tx - x).hypot(ty - y) <= r;
    targets.iter().rev().find(|target| match target {
        Target::Pet { x: tx, y: ty, .. } => reach(*tx, *ty, MARKER_R + 3.0),
        Target::Cluster {
            x: tx, y: ty, r, ..
        } => reach(*tx, *ty, *r),
    })
}

fn look(dot: &PetDot) -> Look {
    if dot.pet.is_outside() {
        Look::Outside
    } else if dot.pet.is_online() {
        Look::Online
    } else {
        Look::Offline
    }
}

/// The south-west and north-east corners around `points`, if there are any.
pub(crate) fn bounds(points: impl Iterator<Item = LatLng>) -> Option<(LatLng, LatLng)> {
    points.fold(None, |acc, p| {
        let (sw, ne) = acc.unwrap_or((p, p));
        Some((
            LatLng::new(sw.lat.min(p.lat), sw.lng.min(p.lng)),
            LatLng::new(ne.lat.max(p.lat), ne.lng.max(p.lng)),
        ))
    })
}
