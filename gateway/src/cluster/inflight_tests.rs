//! The window of stream messages in flight, without NATS: a message is a number, JetStream's
//! answers are given by hand, and time is passed as an argument.

use std::sync::atomic::Ordering;

use tokio::sync::oneshot::{self, error::TryRecvError};

use super::*;

type Told = oneshot::Receiver<Result<(), ForwardError>>;

struct Fixture {
    window: InFlight<u32>,
    metrics: Arc<ClusterMetrics>,
    now: Instant,
}

impl Fixture {
    fn new() -> Self {
        let metrics = Arc::new(ClusterMetrics::default());
        Self {
            window: InFlight::new(metrics.clone()),
            metrics,
            now: Instant::now(),
        }
    }

    /// Takes message `n` (on `line`, if any): its sequence number and its publisher's end.
    fn push(&mut self, n: u32, line: Option<&str>) -> (u64, Told) {
        let (ack, told) = oneshot::channel();
        let seq = self.window.push(n, ack, line.map(Arc::from), self.now);
        (seq, told)
    }

    /// What is due now, as (message, sent under a new id).
    fn ready(&mut self) -> Vec<(u32, bool)> {
        self.window
            .ready(self.now)
            .into_iter()
            .map(|d| (*self.window.message_mut(d.seq), d.new_id))
            .collect()
    }

    fn stored(&mut self, seq: u64) {
        self.window.settled(seq, Ok(()), self.now);
    }

    fn failed(&mut self, seq: u64) {
        self.window
            .settled(seq, Err("no responders".into()), self.now);
    }

    /// Lets time pass to the end of the pause after a failure.
    fn pause_ends(&mut self) -> Duration {
        let at = self.window.wake_at().expect("a pause after a failure");
        let pause = at - self.now;
        self.now = at;
        pause
    }
}

fn told_ok(told: &mut Told) -> bool {
    matches!(told.try_recv(), Ok(Ok(())))
}

fn not_told(told: &mut Told) -> bool {
    matches!(told.try_recv(), Err(TryRecvError::Empty))
}

#[test]
fn messages_go_out_at_once_in_order_and_each_publisher_is_told_when_its_is_stored() {
    let mut f = Fixture::new();
    let (s1, mut t1) = f.push(1, None);
    let (s2, mut t2) = f.push(2, None);
    assert_eq!(f.ready(), vec![(1, false), (2, false)]);
    f.stored(s2);
    assert!(told_ok(&mut t2), "told at once, whatever is before it");
    assert!(not_told(&mut t1));
    f.stored(s1);
    assert!(told_ok(&mut t1));
    let (_, _t3) = f.push(3, None);
    assert_eq!(f.ready(), vec![(3, false)]);
}

#[test]
fn a_failed_message_goes_again_with_every_message_after_it_in_order() {
    let mut f = Fixture::new();
    let pushed: Vec<_> = (1..=5).map(|n| f.push(n, None)).collect();
    assert_eq!(f.ready().len(), 5);
    f.stored(pushed[0].0);
    f.failed(pushed[1].0);
    f.stored(pushed[2].0);
    assert_eq!(f.window.wake_at(), None, "4 and 5 are still in flight");
    assert!(f.ready().is_empty(), "nothing new goes out meanwhile");
    let (_, mut t6) = f.push(6, None);
    f.failed(pushed[3].0);
    f.stored(pushed[4].0);
    assert_eq!(f.pause_ends(), FIRST_PAUSE);
    // 2 under its own id (JetStream keeps its first copy if it had one); 3 to 5, stored or
    // not, under new ones, so that their last copies land after 2; then 6.
    assert_eq!(
        f.ready(),
        vec![(2, false), (3, true), (4, true), (5, true), (6, false)]
    );
    let mut told = pushed.into_iter().map(|(_, t)| t).collect::<Vec<_>>();
    assert!(not_told(&mut told[1]) && not_told(&mut told[3]));
    for seq in 1..=5 {
        f.stored(seq);
    }
    assert!(told.iter_mut().all(told_ok));
    assert!(told_ok(&mut t6));
    assert_eq!(f.metrics.publishes_retried.load(Ordering::Relaxed), 2);
}

#[test]
fn failures_in_a_row_pause_longer_and_the_pause_starts_over_once_all_is_stored() {
    let mut f = Fixture::new();
    let (s, _t) = f.push(1, None);
    let mut pauses = Vec::new();
    for _ in 0..6 {
        assert_eq!(f.ready(), vec![(1, false)]);
        f.failed(s);
        pauses.push(f.pause_ends().as_millis());
    }
    assert_eq!(pauses, vec![50, 100, 200, 400, 800, 1000]);
    assert_eq!(f.ready(), vec![(1, false)]);
    f.stored(s);
    let (s2, _t2) = f.push(2, None);
    assert_eq!(f.ready(), vec![(2, false)]);
    f.failed(s2);
    assert_eq!(f.pause_ends(), FIRST_PAUSE);
}

#[test]
fn a_message_failing_past_its_time_fails_its_publisher_and_the_rest_go_on() {
    let mut f = Fixture::new();
    let (s1, mut t1) = f.push(1, None);
    let (s2, mut t2) = f.push(2, None);
    assert_eq!(f.ready().len(), 2);
    f.failed(s1);
    f.failed(s2);
    f.pause_ends();
    f.now += RETRY_FOR;
    assert!(f.ready().is_empty(), "both had their time");
    assert!(matches!(t1.try_recv(), Ok(Err(ForwardError(why))) if why.contains("no responders")));
    assert!(matches!(t2.try_recv(), Ok(Err(_))));
    assert_eq!(f.metrics.publishes_failed.load(Ordering::Relaxed), 2);
    let (_, _t3) = f.push(3, None);
    assert_eq!(f.ready(), vec![(3, false)], "the window is open again");
}

#[test]
fn a_line_has_one_message_in_flight_and_a_stored_one_is_never_sent_again() {
    let mut f = Fixture::new();
    let (a1, mut ta1) = f.push(1, Some("a"));
    let (a2, mut ta2) = f.push(2, Some("a"));
    let (b1, _tb1) = f.push(3, Some("b"));
    let (q, _tq) = f.push(4, None);
    assert_eq!(f.ready(), vec![(1, false), (3, false), (4, false)]);
    f.stored(a1);
    assert!(told_ok(&mut ta1));
    assert_eq!(f.ready(), vec![(2, false)], "the line's next");
    // The line's failed message goes again under its own id; the stored one of another line
    // stays as it is, and the one without an id of its own after them goes under a new one.
    f.failed(a2);
    f.stored(b1);
    f.failed(q);
    f.pause_ends();
    assert_eq!(f.ready(), vec![(2, false), (4, true)]);
    f.stored(a2);
    assert!(told_ok(&mut ta2));
}

#[test]
fn a_line_waits_behind_its_failed_message() {
    let mut f = Fixture::new();
    let (a1, mut ta1) = f.push(1, Some("a"));
    let (_, mut ta2) = f.push(2, Some("a"));
    assert_eq!(f.ready(), vec![(1, false)]);
    f.failed(a1);
    f.pause_ends();
    assert_eq!(f.ready(), vec![(1, false)], "2 still waits for 1");
    f.stored(a1);
    assert_eq!(f.ready(), vec![(2, false)]);
    assert!(told_ok(&mut ta1) && not_told(&mut ta2));
}
