//! The store suite: every test runs against [`MemoryStore`] (the reference)
//! and [`DiskStore`], so both mean the same by every op.

use std::num::{NonZeroU16, NonZeroU32};

use aviary_protocol::{ByteString, QoS};

use super::*;

/// Records for the tests.
pub(crate) mod samples {
    use super::*;

    /// A plain QoS 1 message.
    pub(crate) fn message(topic: &str, payload: &'static [u8]) -> StoredMessage {
        StoredMessage {
            topic: ByteString::from(topic),
            payload: Bytes::from_static(payload),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: MessageProperties::default(),
            expires_at_unix_ms: None,
            stream_seq: None,
        }
    }

    /// A message with every property set.
    pub(crate) fn rich_message() -> StoredMessage {
        StoredMessage {
            topic: ByteString::from("pets/ü/status"),
            payload: Bytes::from_static(b"{\"online\":false}"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: MessageProperties {
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(3600),
                content_type: Some("application/json".into()),
                response_topic: Some("pets/1/reply".into()),
                correlation_data: Some(Bytes::from_static(&[0, 1, 2, 255])),
                user_properties: vec![("k".into(), "v".into()), ("k".into(), "".into())],
            },
            expires_at_unix_ms: Some(1_700_000_000_000),
            stream_seq: Some(1 << 40),
        }
    }

    /// A disconnected MQTT 5 session with subscriptions and a delayed will.
    pub(crate) fn full_session(client_id: &str) -> SessionRecord {
        SessionRecord {
            client_id: ByteString::from(client_id),
            protocol: ProtocolVersion::V5,
            expiry_secs: 86_400,
            disconnected_at_unix_ms: Some(1_700_000_000_000),
            subscriptions: vec![
                StoredSubscription {
                    filter: "pets/+/location".into(),
                    options: SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: aviary_protocol::RetainHandling::SendIfNew,
                    },
                    identifier: NonZeroU32::new(7),
                },
                StoredSubscription {
                    filter: "$share/g/pets/#".into(),
                    options: SubscriptionOptions::qos(QoS::ExactlyOnce),
                    identifier: None,
                },
            ],
            will: Some(StoredWill {
                message: rich_message(),
                delay_secs: 30,
            }),
            will_due_at_unix_ms: Some(1_700_000_030_000),
            username: Some("owner-1".into()),
        }
    }

    /// A queued, unsent entry for message `id`.
    pub(crate) fn queue_entry(id: u64, qos: QoS) -> QueueEntry {
        QueueEntry {
            message: MessageId(id),
            inline: None,
            qos,
            retain: false,
            subscription_ids: Vec::new(),
            state: DeliveryState::Queued,
        }
    }
}

use samples::*;

fn cid(s: &str) -> ByteString {
    ByteString::from(s)
}

fn nz(v: u16) -> NonZeroU16 {
    NonZeroU16::new(v).unwrap()
}

fn put_msg(id: u64) -> Op {
    Op::PutMessage {
        id: MessageId(id),
        message: message("t/1", b"x"),
    }
}

fn put_queued(client: &str, seq: u64, msg: u64) -> Op {
    Op::PutQueued {
        client_id: cid(client),
        seq,
        entry: queue_entry(msg, QoS::AtLeastOnce),
    }
}

fn seqs(s: &Snapshot, client: &str) -> Vec<u64> {
    s.queues
        .get(client)
        .map_or(Vec::new(), |q| q.keys().copied().collect())
}

pub(super) fn empty_store_loads_empty(s: &dyn Store) {
    assert_eq!(s.load().unwrap(), Snapshot::default());
}

pub(super) fn messages_round_trip_and_delete(s: &dyn Store) {
    let rich = rich_message();
    s.commit(&[
        put_msg(1),
        Op::PutMessage {
            id: MessageId(2),
            message: rich.clone(),
        },
    ])
    .unwrap();
    let snap = s.load().unwrap();
    assert_eq!(snap.messages.len(), 2);
    assert_eq!(snap.messages[&MessageId(2)], rich);
    s.commit(&[Op::DeleteMessage { id: MessageId(1) }]).unwrap();
    let snap = s.load().unwrap();
    assert_eq!(
        snap.messages.keys().copied().collect::<Vec<_>>(),
        [MessageId(2)]
    );
    // Deleting what is not there is not an error.
    s.commit(&[Op::DeleteMessage { id: MessageId(99) }])
        .unwrap();
}

pub(super) fn sessions_round_trip_replace_and_delete(s: &dyn Store) {
    let mut a = full_session("dev-1");
    s.commit(&[
        Op::PutSession(a.clone()),
        Op::PutSession(full_session("dev-2")),
    ])
    .unwrap();
    assert_eq!(s.load().unwrap().sessions[&cid("dev-1")], a);
    a.disconnected_at_unix_ms = None;
    a.will = None;
    s.commit(&[Op::PutSession(a.clone())]).unwrap();
    let snap = s.load().unwrap();
    assert_eq!(snap.sessions[&cid("dev-1")], a);
    assert_eq!(snap.sessions.len(), 2);
    s.commit(&[Op::DeleteSession {
        client_id: cid("dev-2"),
    }])
    .unwrap();
    assert_eq!(
        s.load().unwrap().sessions.keys().collect::<Vec<_>>(),
        [&cid("dev-1")]
    );
}

pub(super) fn queues_load_in_seq_order(s: &dyn Store) {
    // Written out of order, across commits, for clients whose ids prefix
    // each other; seqs that differ in their low byte only.
    s.commit(&[put_queued("a", 300, 1), put_queued("ab", 1, 1)])
        .unwrap();
    s.commit(&[
        put_queued("a", 5, 1),
        put_queued("a", 1, 1),
        put_queued("a", 256, 1),
    ])
    .unwrap();
    s.commit(&[Op::DeleteQueued {
        client_id: cid("a"),
        seq: 5,
        written_once: true,
    }])
    .unwrap();
    let snap = s.load().unwrap();
    assert_eq!(seqs(&snap, "a"), [1, 256, 300]);
    assert_eq!(seqs(&snap, "ab"), [1]);
    assert_eq!(snap.next_seq("a"), 301);
    assert_eq!(snap.next_seq("nobody"), 0);
}

pub(super) fn queue_entry_moves_through_delivery_states(s: &dyn Store) {
    let mut e = queue_entry(7, QoS::ExactlyOnce);
    e.subscription_ids = vec![NonZeroU32::new(3).unwrap()];
    let put = |e: &QueueEntry| Op::PutQueued {
        client_id: cid("c"),
        seq: 0,
        entry: e.clone(),
    };
    s.commit(&[put(&e)]).unwrap();
    for state in [
        DeliveryState::Sent { packet_id: nz(10) },
        DeliveryState::Released { packet_id: nz(10) },
    ] {
        e.state = state;
        s.commit(&[put(&e)]).unwrap();
        assert_eq!(s.load().unwrap().queues[&cid("c")][&0], e);
    }
}

pub(super) fn incoming_qos2_ids_round_trip(s: &dyn Store) {
    let put = |c: &str, id, forwarded| Op::PutIncomingQos2 {
        client_id: cid(c),
        packet_id: nz(id),
        forwarded,
    };
    let forwarded = Forwarded {
        node: cid("gw-a"),
        token: 1 << 40,
    };
    s.commit(&[
        put("c", 1, None),
        put("c", 65535, Some(forwarded.clone())),
        put("d", 1, None),
    ])
    .unwrap();
    s.commit(&[Op::DeleteIncomingQos2 {
        client_id: cid("c"),
        packet_id: nz(1),
    }])
    .unwrap();
    let snap = s.load().unwrap();
    assert_eq!(
        snap.incoming_qos2[&cid("c")]
            .iter()
            .map(|(i, f)| (i.get(), f.clone()))
            .collect::<Vec<_>>(),
        [(65535, Some(forwarded))]
    );
    assert_eq!(snap.incoming_qos2[&cid("d")].len(), 1);
    s.commit(&[Op::DeleteIncomingQos2 {
        client_id: cid("d"),
        packet_id: nz(1),
    }])
    .unwrap();
    assert!(!s.load().unwrap().incoming_qos2.contains_key("d"));
}

pub(super) fn retained_put_replace_delete(s: &dyn Store) {
    let topic = cid("pets/1/status");
    let put = |m: StoredMessage| Op::PutRetained {
        topic: topic.clone(),
        message: m,
    };
    s.commit(&[put(message("pets/1/status", b"a")), put(rich_message())])
        .unwrap();
    assert_eq!(s.load().unwrap().retained[&topic], rich_message());
    s.commit(&[Op::PutRetained {
        topic: cid("other"),
        message: message("other", b"o"),
    }])
    .unwrap();
    s.commit(&[Op::DeleteRetained {
        topic: topic.clone(),
    }])
    .unwrap();
    let snap = s.load().unwrap();
    assert_eq!(snap.retained.keys().collect::<Vec<_>>(), [&cid("other")]);
}

pub(super) fn delete_session_removes_everything_of_that_client_only(s: &dyn Store) {
    let qos2 = |c: &str| Op::PutIncomingQos2 {
        client_id: cid(c),
        packet_id: nz(4),
        forwarded: None,
    };
    let mut ops = vec![put_msg(1)];
    for c in ["dev-1", "dev-10", "dev"] {
        ops.extend([
            Op::PutSession(full_session(c)),
            put_queued(c, 0, 1),
            put_queued(c, 1, 1),
        ]);
        ops.push(qos2(c));
    }
    s.commit(&ops).unwrap();
    s.commit(&[Op::DeleteSession {
        client_id: cid("dev-1"),
    }])
    .unwrap();
    let snap = s.load().unwrap();
    assert!(!snap.sessions.contains_key("dev-1"));
    assert!(!snap.queues.contains_key("dev-1"));
    assert!(!snap.incoming_qos2.contains_key("dev-1"));
    for c in ["dev-10", "dev"] {
        assert!(snap.sessions.contains_key(c), "{c}");
        assert_eq!(seqs(&snap, c), [0, 1], "{c}");
        assert!(snap.incoming_qos2.contains_key(c), "{c}");
    }
    // The message is the broker's to delete.
    assert!(snap.messages.contains_key(&MessageId(1)));
}

pub(super) fn ops_in_one_commit_apply_in_order(s: &dyn Store) {
    s.commit(&[put_queued("c", 0, 1)]).unwrap();
    s.commit(&[
        put_queued("c", 1, 1),
        Op::DeleteSession {
            client_id: cid("c"),
        },
        Op::PutSession(full_session("c")),
        put_queued("c", 2, 1),
        put_msg(1),
        Op::DeleteMessage { id: MessageId(1) },
        Op::DeleteMessage { id: MessageId(2) },
        put_msg(2),
    ])
    .unwrap();
    let snap = s.load().unwrap();
    assert!(snap.sessions.contains_key("c"));
    assert_eq!(seqs(&snap, "c"), [2]);
    assert_eq!(
        snap.messages.keys().copied().collect::<Vec<_>>(),
        [MessageId(2)]
    );
}

pub(super) fn records_created_and_deleted_in_one_commit_leave_nothing(s: &dyn Store) {
    let del_queued = |seq| Op::DeleteQueued {
        client_id: cid("c"),
        seq,
        written_once: false,
    };
    let mut sent = queue_entry(1, QoS::ExactlyOnce);
    sent.state = DeliveryState::Sent { packet_id: nz(4) };
    let put_sent = |seq| Op::PutQueued {
        client_id: cid("c"),
        seq,
        entry: sent.clone(),
    };
    // Entry 0 and message 1 exist before; entry 1 is created, sent and deleted in the commit.
    s.commit(&[put_msg(1), put_queued("c", 0, 1)]).unwrap();
    s.commit(&[
        put_queued("c", 1, 1),
        put_sent(1),
        del_queued(1),
        put_sent(0),
        del_queued(0),
        put_msg(2),
        put_queued("c", 2, 2),
        del_queued(2),
        Op::DeleteMessage { id: MessageId(2) },
        Op::DeleteMessage { id: MessageId(1) },
        // Created again after its deletion: the last write wins.
        put_msg(2),
    ])
    .unwrap();
    let snap = s.load().unwrap();
    assert_eq!(seqs(&snap, "c"), Vec::<u64>::new());
    assert_eq!(
        snap.messages.keys().copied().collect::<Vec<_>>(),
        [MessageId(2)]
    );
}

pub(super) fn a_refused_commit_changes_nothing(s: &dyn Store) {
    s.commit(&[put_msg(1)]).unwrap();
    let before = s.load().unwrap();
    let long = "x".repeat(MAX_CLIENT_ID_BYTES + 1);
    let e = s
        .commit(&[
            put_msg(2),
            Op::DeleteMessage { id: MessageId(1) },
            put_queued(&long, 0, 2),
        ])
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("nothing of it was applied"), "{e}");
    assert_eq!(s.load().unwrap(), before);
}

pub(super) fn snapshot_helpers(s: &dyn Store) {
    assert_eq!(s.load().unwrap().next_message_id(), MessageId(1));
    s.commit(&[put_msg(3), put_msg(9), put_queued("c", 0, 9)])
        .unwrap();
    let snap = s.load().unwrap();
    assert_eq!(snap.next_message_id(), MessageId(10));
    assert_eq!(snap.unreferenced_messages(), [MessageId(3)]);
}

/// An entry that carries its message needs no record and names none: the id it holds counts
/// for where ids resume, not as a reference to keep a record alive.
pub(super) fn entries_carrying_their_message(s: &dyn Store) {
    let mut entry = queue_entry(12, QoS::AtLeastOnce);
    entry.inline = Some(Box::new(rich_message()));
    let put = Op::PutQueued {
        client_id: cid("c"),
        seq: 0,
        entry: entry.clone(),
    };
    s.commit(&[put_msg(12), put]).unwrap();
    let snap = s.load().unwrap();
    assert_eq!(snap.queues[&cid("c")][&0], entry);
    assert_eq!(snap.unreferenced_messages(), [MessageId(12)]);
    s.commit(&[Op::DeleteMessage { id: MessageId(12) }])
        .unwrap();
    assert_eq!(s.load().unwrap().next_message_id(), MessageId(13));
}

/// A delete of a key put once removes that put and nothing older: a session deleted and
/// started again reuses its queue's keys, and the first session's entry stays gone.
pub(super) fn a_write_once_delete_removes_only_its_own_put(s: &dyn Store) {
    s.commit(&[put_msg(1), put_queued("c", 0, 1)]).unwrap();
    s.commit(&[Op::DeleteSession {
        client_id: cid("c"),
    }])
    .unwrap();
    s.commit(&[put_queued("c", 0, 1)]).unwrap();
    s.commit(&[Op::DeleteQueued {
        client_id: cid("c"),
        seq: 0,
        written_once: true,
    }])
    .unwrap();
    let snap = s.load().unwrap();
    assert!(snap.queues.is_empty(), "{:?}", snap.queues);
}

/// Instantiates the suite for one implementation: `$make` returns the
/// store and whatever must live as long as it (a temp dir); `$check`, if
/// given, looks at both after each test.
macro_rules! store_suite {
    ($module:ident, $make:expr) => {
        store_suite!($module, $make, |_, _| {});
    };
    ($module:ident, $make:expr, $check:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::super::*;

            store_suite!(@tests $make, $check;
                empty_store_loads_empty,
                messages_round_trip_and_delete,
                sessions_round_trip_replace_and_delete,
                queues_load_in_seq_order,
                queue_entry_moves_through_delivery_states,
                incoming_qos2_ids_round_trip,
                retained_put_replace_delete,
                delete_session_removes_everything_of_that_client_only,
                ops_in_one_commit_apply_in_order,
                records_created_and_deleted_in_one_commit_leave_nothing,
                a_refused_commit_changes_nothing,
                snapshot_helpers,
                entries_carrying_their_message,
                a_write_once_delete_removes_only_its_own_put,
            );
        }
    };
    (@tests $make:expr, $check:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                let (store, keep) = $make;
                super::$name(&store);
                ($check)(&store, &keep);
                // The store closes before its directory is removed.
                drop(store);
                drop(keep);
            }
        )*
    };
}

store_suite!(memory, (MemoryStore::new(), None::<tempfile::TempDir>));
store_suite!(disk, {
    let dir = tempfile::tempdir().unwrap();
    (DiskStore::open(dir.path(), SyncMode::Process).unwrap(), dir)
});
// Its replica's log, replayed, gives back what the store loads.
store_suite!(
    replicated,
    super::super::replica_tests::replicated(),
    |store: &DiskStore,
     (log, _): &(
        Arc<super::super::replica_tests::MemoryLog>,
        tempfile::TempDir
    )| {
        assert_eq!(log.replay(), store.load().unwrap());
    }
);
