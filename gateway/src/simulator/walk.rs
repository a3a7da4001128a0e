//! How a simulated pet moves: a random walk with momentum around its home,
//! pulled back when it strays beyond its safe zone, except for the
//! adventurous ones who sometimes wander off for a while.

/// A small deterministic random source (SplitMix64), so `--seed` replays
/// the same walks.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        self.unit().mul_add(hi - lo, lo)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

const METRES_PER_DEGREE: f64 = 111_320.0;

/// A point on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatLng {
    pub(crate) lat: f64,
    pub(crate) lng: f64,
}

impl LatLng {
    /// The point `north` and `east` metres away (flat-Earth, fine at city scale).
    pub(crate) fn offset(self, north: f64, east: f64) -> Self {
        Self {
            lat: self.lat + north / METRES_PER_DEGREE,
            lng: self.lng + east / (METRES_PER_DEGREE * self.lat.to_radians().cos()),
        }
    }

    /// Metres north and east from `self` to `other`.
    pub(crate) fn delta(self, other: Self) -> (f64, f64) {
        let north = (other.lat - self.lat) * METRES_PER_DEGREE;
        let east = (other.lng - self.lng) * METRES_PER_DEGREE * self.lat.to_radians().cos();
        (north, east)
    }

    pub(crate) fn distance(self, other: Self) -> f64 {
        let (n, e) = self.delta(other);
        n.hypot(e)
    }
}

/// One pet's movement state.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    pub(crate) home: LatLng,
    pub(crate) position: LatLng,
    /// Safe-zone radius in metres.
    pub(crate) zone: f64,
    heading: f64,
    speed: f64,
    adventurous: bool,
    /// Ticks left of the current escapade outside the zone.
    wandering: u32,
}

impl Walk {
    pub(crate) fn new(home: LatLng, zone: f64, adventurous: bool, rng: &mut Rng) -> Self {
        Self {
            home,
            position: home.offset(rng.range(-zone, zone) / 2.0, rng.range(-zone, zone) / 2.0),
            zone,
            heading: rng.range(0.0, std::f64::consts::TAU),
            speed: rng.range(2.0, 6.0),
            adventurous,
            wandering: 0,
        }
    }

    /// Moves for `secs` seconds.
    pub(crate) fn step(&mut self, secs: f64, rng: &mut Rng) {
        if self.adventurous && self.wandering == 0 && rng.chance(0.01) {
            self.wandering = rng.range(20.0, 60.0) as u32;
        }
        self.heading += rng.range(-0.6, 0.6);
        let (north, east) = self.position.delta(self.home);
        let away = self.home.distance(self.position);
        if self.wandering > 0 {
            self.wandering -= 1;
        } else if away > self.zone * 0.8 {
            // Turn most of the way towards home.
            let home_heading = east.atan2(north);
            let diff = (home_heading - self.heading + std::f64::consts::PI)
                .rem_euclid(std::f64::consts::TAU)
                - std::f64::consts::PI;
            self.heading += diff * 0.7;
        }
        let dist = self.speed * secs.min(10.0);
        self.position = self
            .position
            .offset(dist * self.heading.cos(), dist * self.heading.sin());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_walk() {
        let home = LatLng {
            lat: 52.37,
            lng: 4.9,
        };
        let walk = |seed| {
            let mut rng = Rng::new(seed);
            let mut w = Walk::new(home, 200.0, false, &mut rng);
            for _ in 0..100 {
                w.step(1.0, &mut rng);
            }
            w.position
        };
        assert_eq!(walk(7), walk(7));
        assert_ne!(walk(7), walk(8));
    }

    #[test]
    fn homebodies_stay_near_their_zone() {
        let home = LatLng {
            lat: 52.37,
            lng: 4.9,
        };
        let mut rng = Rng::new(1);
        let mut w = Walk::new(home, 200.0, false, &mut rng);
        for _ in 0..2000 {
            w.step(1.0, &mut rng);
            assert!(home.distance(w.position) < 400.0, "strayed to {w:?}");
        }
    }

    #[test]
    fn offset_and_delta_agree() {
        let a = LatLng {
            lat: 52.0,
            lng: 5.0,
        };
        let b = a.offset(100.0, -50.0);
        let (n, e) = a.delta(b);
        assert!((n - 100.0).abs() < 1e-6 && (e + 50.0).abs() < 1e-6);
    }
}
