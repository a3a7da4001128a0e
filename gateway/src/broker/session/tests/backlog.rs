//! Tests of backpressure (`session::backlog`), on paused time: a queue past its high-water
//! mark gives its publisher a room to wait for; the room opens when the writer takes the queue
//! down to the low-water mark or the client goes; a writer that takes nothing for `STALL`,
//! or keeps a publisher waiting past `PATIENCE`, marks its subscriber slow, and a slow
//! subscriber holds no one back until it has emptied its queue.

use super::*;
use tokio::sync::Notify;

const STALL: Duration = SlowAfter::DEFAULT.stall;
const PATIENCE: Duration = SlowAfter::DEFAULT.patience;

/// High water at 4 messages (half of 8), low water at 2.
const QUEUE: QueueLimits = QueueLimits {
    max_messages: 8,
    max_bytes: 1 << 20,
    qos0_offline: false,
    slow: SlowAfter::DEFAULT,
};

/// Queues QoS 0 messages until one past the high-water mark gives a room.
fn fill_to_high_water(s: &Session) -> Arc<Notify> {
    for _ in 0..QUEUE.max_messages {
        if let (_, Some(room)) = s.enqueue_pressing(out(QoS::AtMostOnce, b"m"), &QUEUE) {
            return room;
        }
    }
    panic!("no room given up to the queue's limit");
}

/// A publisher waiting for `room` in a task of its own.
fn wait_in_background(s: &Arc<Session>, room: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    let s = s.clone();
    tokio::spawn(async move { s.room(room).await })
}

/// Takes one batch of at most `max` messages, as the writer does.
fn take(s: &Session, max: usize) -> usize {
    s.take_batch(7, max, Instant::now(), &no_retained())
        .messages
        .len()
}

#[test]
fn the_queue_presses_its_publisher_only_past_half_its_limits() {
    let s = online();
    for _ in 0..3 {
        let (_, room) = s.enqueue_pressing(out(QoS::AtMostOnce, b"m"), &QUEUE);
        assert!(room.is_none());
    }
    let (_, room) = s.enqueue_pressing(out(QoS::AtMostOnce, b"m"), &QUEUE);
    assert!(room.is_some(), "the 4th of 8 is the high-water mark");
}

#[test]
fn an_offline_session_presses_no_one() {
    let s = Session::new(1, ByteString::from_static("c"));
    for _ in 0..QUEUE.max_messages {
        let (_, room) = s.enqueue_pressing(out(QoS::AtLeastOnce, b"m"), &QUEUE);
        assert!(room.is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn the_room_opens_when_the_writer_takes_the_queue_down_to_low_water() {
    let s = Arc::new(online());
    let room = fill_to_high_water(&s);
    let waiting = wait_in_background(&s, room);
    tokio::task::yield_now().await;
    assert_eq!(take(&s, 1), 1, "3 left: above low water");
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    assert_eq!(take(&s, 1), 1, "2 left: low water");
    tokio::time::timeout(Duration::from_millis(1), waiting)
        .await
        .expect("the publisher goes on")
        .unwrap();
    let (_, room) = s.enqueue_pressing(out(QoS::AtMostOnce, b"m"), &QUEUE);
    assert!(
        room.is_none(),
        "not slow: pressed again only past high water"
    );
}

#[tokio::test(start_paused = true)]
async fn a_writer_that_takes_nothing_for_the_stall_marks_its_subscriber_slow() {
    let s = online();
    let room = fill_to_high_water(&s);
    let started = tokio::time::Instant::now();
    s.room(room).await;
    assert_eq!(started.elapsed(), STALL);
    for _ in 0..QUEUE.max_messages {
        let (_, room) = s.enqueue_pressing(out(QoS::AtMostOnce, b"m"), &QUEUE);
        assert!(room.is_none(), "slow: it holds no one back");
    }
    // Caught up: the queue emptied, and it presses again past high water.
    while take(&s, 100) > 0 {}
    fill_to_high_water(&s);
}

#[tokio::test(start_paused = true)]
async fn a_writer_that_progresses_is_waited_for_until_patience_runs_out() {
    let s = Arc::new(online());
    let room = fill_to_high_water(&s);
    let waiting = wait_in_background(&s, room);
    let started = tokio::time::Instant::now();
    // The writer takes one message per half stall, and the publisher keeps adding: the queue
    // never gets down to low water.
    while !waiting.is_finished() {
        tokio::time::sleep(STALL / 2).await;
        take(&s, 1);
        s.enqueue_pressing(out(QoS::AtMostOnce, b"m"), &QUEUE);
        assert!(started.elapsed() <= PATIENCE + STALL, "waited too long");
    }
    assert!(started.elapsed() >= PATIENCE);
    let (_, room) = s.enqueue_pressing(out(QoS::AtMostOnce, b"m"), &QUEUE);
    assert!(room.is_none(), "slow after PATIENCE");
}

#[tokio::test(start_paused = true)]
async fn the_room_opens_when_the_subscriber_goes() {
    let s = Arc::new(online());
    let room = fill_to_high_water(&s);
    let waiting = wait_in_background(&s, room);
    tokio::task::yield_now().await;
    assert!(s.detach(7, LOST).is_some());
    tokio::time::timeout(Duration::from_millis(1), waiting)
        .await
        .expect("the publisher goes on at once")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_full_window_is_no_progress() {
    // QoS 1 with a window of 2: the writer takes 2 and then nothing, however often it looks.
    let s = online();
    for _ in 0..2 {
        s.enqueue_pressing(out(QoS::AtLeastOnce, b"m"), &QUEUE);
    }
    assert_eq!(take(&s, 100), 2);
    let room = loop {
        if let (_, Some(room)) = s.enqueue_pressing(out(QoS::AtLeastOnce, b"m"), &QUEUE) {
            break room;
        }
    };
    let started = tokio::time::Instant::now();
    let looking = async {
        loop {
            tokio::time::sleep(STALL / 4).await;
            assert_eq!(take(&s, 100), 0);
        }
    };
    tokio::select! {
        () = s.room(room) => {}
        () = looking => unreachable!(),
    }
    assert_eq!(started.elapsed(), STALL);
}

#[test]
fn a_run_overshoots_the_high_water_mark_by_an_eighth_of_the_slack_at_most() {
    let run = |max_messages| QueueLimits {
        max_messages,
        ..QUEUE
    };
    // 8 messages: the mark at 4, 4 to spare: runs of one, as before runs.
    assert_eq!(run(8).run_length(64), 1);
    // 100: the mark at 50, 50 to spare.
    assert_eq!(run(100).run_length(64), 6);
    // The default 10,000: the mark at 4,096; runs as long as asked.
    assert_eq!(run(10_000).run_length(64), 64);
    assert_eq!(run(1).run_length(64), 1);
}
