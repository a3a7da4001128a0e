//! How far apart the host has put this machine's cores: the time a cache line takes to go
//! from one core to the other and back, timed between two threads pinned one to each.
//!
//! Why: the machine is a virtual one, and its host moves the virtual CPUs about. Timed every
//! few seconds on the 2-core machine the bench runs on, the round trip sat at about 55 ns
//! (cores sharing a cache) for tens of seconds, then at about 320 ns (apart) for tens more,
//! and back. A broker hands every message between threads and to the load generator on the
//! other core, so its CPU per message moved with it: about 2.0 µs against 3.3–3.9 in the
//! slow-consumer runs, for the same build and load. A paired comparison whose two runs fall on
//! either side of such a move measures the host, not the broker; the slow consumer times the
//! cores around each run and runs such a round again (see `slow`).

use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Round trips per batch, and batches: the median batch is the figure, so one batch the
/// scheduler interrupted does not move it. About 3 ms in all with the cores apart.
const TRIPS: u32 = 2_000;
const BATCHES: usize = 5;
/// Longest a probe spins before it gives up: the other thread was not scheduled.
const GIVE_UP: Duration = Duration::from_millis(250);
/// Two probes farther apart than this factor saw the cores in different places: the two
/// places found here are six times apart, and one place's probes within 30 % of each other.
const MOVED: f64 = 2.0;

/// A value on a cache line of its own, so the ball and the stop flag do not share one.
#[repr(align(128))]
struct Line<T>(T);

/// The median round trip of a cache line between the first two CPUs this process may run
/// on; `None` with fewer than two, or when a thread cannot be pinned or is not scheduled.
/// Blocks for a few milliseconds, spinning on both cores: call it between runs, never
/// during one, and off the async runtime's threads.
pub(crate) fn round_trip() -> Option<Duration> {
    let [here, there] = two_cpus()?;
    let ball = Line(AtomicU64::new(0));
    let stop = Line(AtomicBool::new(false));
    std::thread::scope(|s| {
        // Both threads are new ones: pinning the caller would pin a worker of the runtime.
        let returner = s.spawn(|| {
            if pin(there) {
                return_ball(&ball.0, &stop.0);
            }
        });
        let server = s.spawn(|| pin(here).then(|| serve(&ball.0)).flatten());
        let timed = server.join().ok().flatten();
        stop.0.store(true, Ordering::Release);
        let _ = returner.join();
        timed
    })
}

/// Whether every probe of `probes` saw the cores in the same place (true for fewer than two).
pub(crate) fn unmoved(probes: &[Duration]) -> bool {
    match (probes.iter().min(), probes.iter().max()) {
        (Some(min), Some(max)) => max.as_secs_f64() <= min.as_secs_f64() * MOVED,
        _ => true,
    }
}

/// `probes` for a report: "55 ns", or "55–320 ns" when they differ.
pub(crate) fn describe(probes: &[Duration]) -> String {
    let ns = |d: &Duration| d.as_nanos();
    match (probes.iter().map(ns).min(), probes.iter().map(ns).max()) {
        (Some(min), Some(max)) if min == max => format!("{min} ns"),
        (Some(min), Some(max)) => format!("{min}–{max} ns"),
        _ => "not timed".to_owned(),
    }
}

/// The first two CPUs of this process's affinity mask.
fn two_cpus() -> Option<[usize; 2]> {
    let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let mut cpus = (0..CpuSet::count()).filter(|&c| allowed.is_set(c).unwrap_or(false));
    Some([cpus.next()?, cpus.next()?])
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> bool {
    let mut set = CpuSet::new();
    set.set(cpu).is_ok() && sched_setaffinity(Pid::from_raw(0), &set).is_ok()
}

/// Sends the ball (odd numbers) and waits for it back (the next even one), `BATCHES` times
/// `TRIPS`; the median batch's time per trip, or `None` after `GIVE_UP`. The stop flag is
/// the returner's alone: it is raised once this has returned.
fn serve(ball: &AtomicU64) -> Option<Duration> {
    let deadline = Instant::now() + GIVE_UP;
    let mut sent = 1;
    let mut batches = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..TRIPS {
            ball.store(sent, Ordering::Release);
            let mut spins = 0u32;
            while ball.load(Ordering::Acquire) != sent + 1 {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(4096) && Instant::now() > deadline {
                    return None;
                }
                spin_loop();
            }
            sent += 2;
        }
        batches.push(start.elapsed() / TRIPS);
    }
    batches.sort_unstable();
    Some(batches[BATCHES / 2])
}

/// Returns every ball it sees, until told to stop.
fn return_ball(ball: &AtomicU64, stop: &AtomicBool) {
    let mut returned = 0;
    loop {
        let seen = ball.load(Ordering::Acquire);
        if seen % 2 == 1 && seen != returned {
            ball.store(seen + 1, Ordering::Release);
            returned = seen;
        } else if stop.load(Ordering::Relaxed) {
            return;
        } else {
            spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_is_timed_on_two_cores_and_none_on_one() {
        // A probe gives up when a thread is not scheduled for `GIVE_UP`: the other tests run
        // beside this one, so a few tries.
        let probe = (0..5).find_map(|_| round_trip());
        if two_cpus().is_some() {
            let d = probe.expect("two CPUs: a round trip");
            assert!(d > Duration::ZERO && d < GIVE_UP, "{d:?}");
        } else {
            assert_eq!(probe, None);
        }
    }

    #[test]
    fn probes_within_a_factor_of_two_saw_the_same_place() {
        let ns = Duration::from_nanos;
        assert!(unmoved(&[]));
        assert!(unmoved(&[ns(55)]));
        assert!(unmoved(&[ns(52), ns(60), ns(57), ns(102)]));
        assert!(!unmoved(&[ns(55), ns(57), ns(320)]));
        assert!(unmoved(&[ns(310), ns(350), ns(330)]));
        assert_eq!(describe(&[ns(55), ns(320)]), "55–320 ns");
        assert_eq!(describe(&[ns(55), ns(55)]), "55 ns");
        assert_eq!(describe(&[]), "not timed");
    }
}
