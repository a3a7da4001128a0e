//! The order and batching of a consumer's acknowledgements, without NATS: a message is its
//! delivery's tag (a number), commits are oneshot channels, time is paused.

use tokio::sync::oneshot;

use super::*;

/// Acks with no fence: the server said nothing was left from before.
fn open() -> Acks<u64> {
    let mut acks = Acks::new();
    acks.server_pending(0);
    acks
}

/// Admits and routes `seq` as handled.
fn handled(acks: &mut Acks<u64>, seq: u64, durable: bool) {
    match acks.admit(seq, seq) {
        Admit::Route(m) => acks.routed(seq, Some(m), Routed::Handled { durable }),
        _ => panic!("{seq} should be routed"),
    }
}

/// Admits and routes `seq` as waiting for a commit; the sender ends it.
fn committing(acks: &mut Acks<u64>, seq: u64) -> oneshot::Sender<bool> {
    let (done, commit) = oneshot::channel();
    match acks.admit(seq, seq) {
        Admit::Route(m) => acks.routed(
            seq,
            Some(m),
            Routed::Committing(Box::pin(async move { commit.await.unwrap_or(false) })),
        ),
        _ => panic!("{seq} should be routed"),
    }
    done
}

#[tokio::test(start_paused = true)]
async fn messages_that_wrote_nothing_are_acknowledged_together_after_the_delay() {
    let mut acks = open();
    for seq in [3, 5, 8] {
        handled(&mut acks, seq, false);
        assert_eq!(acks.take(false), None, "not yet");
    }
    let started = Instant::now();
    assert!(matches!(acks.next().await, Event::Due));
    assert_eq!(started.elapsed(), DELAY);
    assert_eq!(
        acks.take(true),
        Some(8),
        "one acknowledgement for all three"
    );
    assert!(
        matches!(acks.admit(5, 55), Admit::Ack(55)),
        "acknowledged: again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_goes_at_once() {
    let mut acks = open();
    for seq in 1..BATCH as u64 {
        handled(&mut acks, seq, false);
        assert_eq!(acks.take(false), None);
    }
    handled(&mut acks, BATCH as u64, false);
    assert_eq!(acks.take(false), Some(BATCH as u64));
}

#[tokio::test(start_paused = true)]
async fn a_stored_message_goes_at_once_and_covers_those_before_it() {
    let mut acks = open();
    handled(&mut acks, 1, false);
    handled(&mut acks, 2, true);
    assert_eq!(acks.take(false), Some(2));
}

#[tokio::test(start_paused = true)]
async fn nothing_after_a_commit_is_acknowledged_before_it() {
    let mut acks = open();
    handled(&mut acks, 1, false);
    let commit = committing(&mut acks, 2);
    handled(&mut acks, 3, false);
    assert!(matches!(acks.next().await, Event::Due));
    assert_eq!(acks.take(true), Some(1), "up to the commit only");
    commit.send(true).unwrap();
    let Event::Committed(seq, done) = acks.next().await else {
        panic!("the commit")
    };
    acks.committed(seq, done);
    assert_eq!(acks.take(false), Some(3), "the commit made the run urgent");
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_holds_everything_until_it_comes_again_and_only_it_is_routed_again() {
    let mut acks = open();
    let commit = committing(&mut acks, 2);
    handled(&mut acks, 3, true);
    commit.send(false).unwrap();
    let Event::Committed(seq, done) = acks.next().await else {
        panic!("the commit")
    };
    acks.committed(seq, done);
    assert_eq!(acks.take(true), None, "3 is handled, but 2 is not");
    // After the acknowledgement wait, the stream sends both again, with newer tags.
    assert!(matches!(acks.admit(2, 20), Admit::Route(20)));
    acks.routed(2, Some(20), Routed::Handled { durable: true });
    // 3 was not acknowledged, but it was handled: not routed twice.
    assert!(matches!(acks.admit(3, 30), Admit::Held));
    assert_eq!(
        acks.take(false),
        Some(30),
        "acknowledged by its newest delivery"
    );
}

#[tokio::test(start_paused = true)]
async fn at_start_nothing_is_acknowledged_until_the_server_counts_no_more_than_are_held() {
    // An earlier run was delivered 4 and never acknowledged it; the server sends it again
    // only after the acknowledgement wait, after newer messages.
    let mut acks = Acks::new();
    handled(&mut acks, 7, false);
    handled(&mut acks, 9, false);
    assert!(acks.fenced());
    assert!(matches!(acks.next().await, Event::Due));
    assert_eq!(acks.take(true), None, "9 would cover 4");
    acks.server_pending(3);
    assert!(acks.fenced(), "3 pending, 2 held: one is missing");
    handled(&mut acks, 4, false);
    acks.server_pending(3);
    assert!(!acks.fenced());
    assert_eq!(acks.take(true), Some(9));
}

#[tokio::test(start_paused = true)]
async fn after_a_failed_pull_acknowledgements_stop_at_the_last_message_seen() {
    let mut acks = open();
    handled(&mut acks, 1, false);
    handled(&mut acks, 2, false);
    acks.pull_failed();
    // The lost pull held 3; the next one brings 4 first.
    handled(&mut acks, 4, false);
    assert_eq!(acks.take(true), Some(2), "up to the fence");
    acks.server_pending(2);
    assert!(acks.fenced(), "4 held, 3 and 4 pending");
    handled(&mut acks, 3, false);
    acks.server_pending(2);
    assert_eq!(acks.take(true), Some(4));
}

#[tokio::test(start_paused = true)]
async fn a_message_handled_and_not_yet_acknowledged_is_not_routed_again() {
    let mut acks = open();
    handled(&mut acks, 1, false);
    assert!(matches!(acks.admit(1, 10), Admit::Held));
    let commit = committing(&mut acks, 2);
    assert!(
        matches!(acks.admit(2, 20), Admit::Held),
        "its commit is under way"
    );
    drop(commit);
}

/// Routes `seq`, read again from the stream, as handled: it has no delivery of its own.
fn replayed(acks: &mut Acks<u64>, seq: u64) {
    assert!(!acks.holds(seq), "{seq} should be routed");
    acks.routed(seq, None, Routed::Handled { durable: false });
}

#[tokio::test(start_paused = true)]
async fn messages_read_again_are_covered_by_the_next_delivery_after_them() {
    let mut acks = open();
    handled(&mut acks, 1, false);
    acks.pull_failed();
    // Deliveries 2 and 3 were lost on the way; 4 revealed it and they were read again.
    replayed(&mut acks, 2);
    replayed(&mut acks, 3);
    assert!(acks.holds(3), "handled");
    handled(&mut acks, 4, false);
    assert_eq!(acks.take(true), Some(1), "up to the fence");
    acks.server_pending(3);
    assert!(!acks.fenced(), "2, 3 and 4 pending, and held");
    assert_eq!(acks.take(true), Some(4), "one acknowledgement covers them");
    assert!(
        matches!(acks.admit(3, 30), Admit::Ack(30)),
        "covered: its late delivery is acknowledged again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_message_read_again_waits_for_a_delivery_after_it() {
    let mut acks = open();
    handled(&mut acks, 1, false);
    replayed(&mut acks, 2);
    assert_eq!(acks.take(true), Some(1), "2 cannot acknowledge itself");
    assert!(acks.holds(2));
    assert!(matches!(acks.admit(2, 20), Admit::Held), "not routed twice");
    handled(&mut acks, 3, false);
    assert_eq!(acks.take(true), Some(3));
}

#[tokio::test(start_paused = true)]
async fn the_fence_is_checked_again_while_it_holds_with_nothing_new_coming() {
    let mut acks = Acks::new();
    handled(&mut acks, 5, false);
    for _ in 0..3 {
        let started = Instant::now();
        assert!(matches!(acks.next().await, Event::Due));
        assert_eq!(started.elapsed(), FENCE_CHECK);
        acks.server_pending(2);
        assert_eq!(acks.take(true), None, "one is missing");
    }
    acks.server_pending(1);
    assert_eq!(acks.take(true), Some(5));
}
