//! Tests of the deadline structure and its driver in paused time: order,
//! replacement, cancellation, an earlier deadline waking a sleeping driver,
//! and stopping.

use std::time::Duration;

use aviary_protocol::ByteString;
use parking_lot::Mutex;

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn session(key: ClientKey) -> Arc<Session> {
    Arc::new(Session::new(key, ByteString::from(format!("s{key}"))))
}

/// What the driver fired: when (since `start`), which session, which timer.
type Fired = Arc<Mutex<Vec<(Duration, ClientKey, Timer, u64)>>>;

/// Starts a driver that records what it fires.
fn drive(timers: &Arc<Timers>, start: Instant) -> (Fired, tokio::task::JoinHandle<()>) {
    let fired = Fired::default();
    let (t, f) = (timers.clone(), fired.clone());
    let task = tokio::spawn(async move {
        t.run(|due| {
            let mut f = f.lock();
            for d in due {
                f.push((start.elapsed(), d.session.key, d.timer, d.generation));
            }
            true
        })
        .await;
    });
    (fired, task)
}

#[tokio::test(start_paused = true)]
async fn deadlines_fire_in_order_at_their_time_and_a_new_one_replaces_the_old() {
    let timers = Arc::new(Timers::default());
    let start = Instant::now();
    let (a, b) = (session(1), session(2));
    timers.set(&a, Timer::Will, start + 5 * SEC, 1);
    timers.set(&a, Timer::Expiry, start + 10 * SEC, 1);
    timers.set(&b, Timer::Expiry, start + 3 * SEC, 7);
    // Replaced: earlier, and with a newer generation.
    timers.set(&a, Timer::Will, start + SEC, 2);
    assert_eq!(timers.len(), 3);
    assert_eq!(timers.deadline(1, Timer::Will), Some(start + SEC));

    let (fired, _task) = drive(&timers, start);
    tokio::time::sleep(60 * SEC).await;
    assert_eq!(
        *fired.lock(),
        [
            (SEC, 1, Timer::Will, 2),
            (3 * SEC, 2, Timer::Expiry, 7),
            (10 * SEC, 1, Timer::Expiry, 1),
        ]
    );
    assert_eq!(timers.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_later_replacement_does_not_fire_at_the_old_time() {
    let timers = Arc::new(Timers::default());
    let start = Instant::now();
    let a = session(1);
    timers.set(&a, Timer::Expiry, start + 5 * SEC, 1);
    let (fired, _task) = drive(&timers, start);
    tokio::time::sleep(2 * SEC).await;
    timers.set(&a, Timer::Expiry, start + 20 * SEC, 2);
    tokio::time::sleep(10 * SEC).await;
    assert!(fired.lock().is_empty(), "nothing at 5 s");
    tokio::time::sleep(10 * SEC).await;
    assert_eq!(*fired.lock(), [(20 * SEC, 1, Timer::Expiry, 2)]);
}

#[tokio::test(start_paused = true)]
async fn cancelled_deadlines_never_fire() {
    let timers = Arc::new(Timers::default());
    let start = Instant::now();
    let (a, b) = (session(1), session(2));
    timers.set(&a, Timer::Will, start + SEC, 1);
    timers.set(&a, Timer::Expiry, start + 2 * SEC, 1);
    timers.set(&b, Timer::Expiry, start + 3 * SEC, 1);
    let (fired, _task) = drive(&timers, start);
    timers.cancel(1);
    assert_eq!(timers.deadline(1, Timer::Will), None);
    tokio::time::sleep(60 * SEC).await;
    assert_eq!(*fired.lock(), [(3 * SEC, 2, Timer::Expiry, 1)]);
}

#[tokio::test(start_paused = true)]
async fn an_earlier_deadline_wakes_a_sleeping_driver() {
    let timers = Arc::new(Timers::default());
    let start = Instant::now();
    let (fired, _task) = drive(&timers, start);
    timers.set(&session(1), Timer::Expiry, start + 3600 * SEC, 1);
    tokio::time::sleep(SEC).await;
    // The driver sleeps for an hour; this is due in 2 s.
    timers.set(&session(2), Timer::Will, start + 3 * SEC, 1);
    tokio::time::sleep(10 * SEC).await;
    assert_eq!(*fired.lock(), [(3 * SEC, 2, Timer::Will, 1)]);
}

#[tokio::test(start_paused = true)]
async fn many_due_at_once_all_fire_in_batches() {
    let timers = Arc::new(Timers::default());
    let start = Instant::now();
    let n = 3 * FIRE_BATCH + 1;
    for key in 0..n as u64 {
        timers.set(&session(key), Timer::Expiry, start + SEC, 1);
    }
    let (fired, _task) = drive(&timers, start);
    tokio::time::sleep(2 * SEC).await;
    assert_eq!(fired.lock().len(), n);
}

#[tokio::test(start_paused = true)]
async fn closing_stops_the_driver_and_drops_the_deadlines() {
    let timers = Arc::new(Timers::default());
    let start = Instant::now();
    timers.set(&session(1), Timer::Expiry, start + SEC, 1);
    let (fired, task) = drive(&timers, start);
    timers.close();
    task.await.expect("the driver stops");
    assert!(fired.lock().is_empty());
    assert_eq!(timers.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_driver_stops_when_its_broker_is_gone() {
    let timers = Arc::new(Timers::default());
    timers.set(&session(1), Timer::Will, Instant::now() + SEC, 1);
    let t = timers.clone();
    let task = tokio::spawn(async move { t.run(|_| false).await });
    task.await.expect("stopped once `fire` said so");
}
