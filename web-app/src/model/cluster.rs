//! Grid clustering of points on the screen: the map draws one bubble per grid cell when too
//! many pets are in view to draw each (a cell's bubble sits at its members' centroid, so it
//! stays near them as they move). Plain arithmetic on screen pixels, tested natively.

use std::collections::HashMap;

/// The pets in one grid cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cluster {
    /// Centroid of the members, in screen pixels.
    pub(crate) x: f64,
    /// Centroid of the members, in screen pixels.
    pub(crate) y: f64,
    /// Indices into the points given to [`grid`].
    pub(crate) members: Vec<usize>,
}

/// Groups `points` (screen pixels) into square cells of `cell` pixels; clusters come in the
/// order of their first member.
pub(crate) fn grid(points: &[(f64, f64)], cell: f64) -> Vec<Cluster> {
    let mut index: HashMap<(i64, i64), usize> = HashMap::new();
    let mut clusters: Vec<Cluster> = Vec::new();
    for (i, &(x, y)) in points.iter().enumerate() {
        let key = ((x / cell).floor() as i64, (y / cell).floor() as i64);
        let slot = *index.entry(key).or_insert_with(|| {
            clusters.push(Cluster {
                x: 0.0,
                y: 0.0,
                members: Vec::new(),
            });
            clusters.len() - 1
        });
        let cluster = &mut clusters[slot];
        cluster.x += x;
        cluster.y += y;
        cluster.members.push(i);
    }
    for cluster in &mut clusters {
        let n = cluster.members.len() as f64;
        cluster.x /= n;
        cluster.y /= n;
    }
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_in_one_cell_share_a_cluster_at_their_centroid() {
        let points = [(1.0, 1.0), (9.0, 5.0), (15.0, 1.0), (-1.0, 1.0)];
        let clusters = grid(&points, 10.0);
        assert_eq!(clusters.len(), 3);
        assert_eq!(clusters[0].members, [0, 1]);
        assert_eq!((clusters[0].x, clusters[0].y), (5.0, 3.0));
        assert_eq!(clusters[1].members, [2]);
        assert_eq!(
            clusters[2].members,
            [3],
            "negative pixels get their own cell"
        );
    }

    #[test]
    fn every_point_lands_in_exactly_one_cluster() {
        let points: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (f64::from(i % 137) * 7.3, f64::from(i / 137) * 5.1))
            .collect();
        let clusters = grid(&points, 64.0);
        let total: usize = clusters.iter().map(|c| c.members.len()).sum();
        assert_eq!(total, points.len());
        assert!(clusters.len() < 400, "{} clusters", clusters.len());
    }
}
