//! Packet identifiers for the messages a session sends at QoS 1 and 2: handed out in turn,
//! 1 to 65,535 and round again, never one still in flight [MQTT-2.2.1-3].
//!
//! Looking for a new id among all those in flight cost a walk of the in-flight window per
//! message sent, the largest single cost of a QoS 1 delivery in fan-out (445 of its 2,480
//! instructions, a window of 100). It is rarely needed: ids handed out in turn, and put in
//! flight in that order, lie between the oldest's id and the last one handed out, so a new id
//! can meet one in flight only once the count comes round to the oldest's. Only then, or
//! while ids from elsewhere are in flight (a store's or another node's, whose order is not
//! known), are they all looked through.

use std::num::NonZeroU16;

use super::Active;

impl Active {
    /// The next packet id not in flight.
    pub(crate) fn alloc_packet_id(&mut self) -> NonZeroU16 {
        if self.inflight.is_empty() {
            self.mixed_ids = false;
        }
        loop {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            let Some(id) = NonZeroU16::new(self.next_packet_id) else {
                continue;
            };
            if !self.mixed_ids {
                match self.inflight.front() {
                    // Come round to the oldest: from here on the ids in flight are no longer
                    // between the oldest's and the last one.
                    Some(oldest) if oldest.packet_id == id => self.mixed_ids = true,
                    _ => return id,
                }
            }
            if !self.inflight.iter().any(|i| i.packet_id == id) {
                return id;
            }
        }
    }

    /// Ids not handed out here, in turn, are going in flight: look through them all.
    pub(super) fn mix_ids(&mut self) {
        self.mixed_ids = true;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::num::NonZeroU16;

    use aviary_protocol::QoS;

    use super::super::{Active, Inflight};
    use crate::broker::session::tests::out;

    fn inflight(id: NonZeroU16) -> Inflight {
        Inflight {
            packet_id: id,
            out: out(QoS::AtLeastOnce, b"x"),
            released: false,
        }
    }

    /// Sends `count` messages through a window of `window`, each acknowledgement taking the
    /// entry `pick` chooses, checking every new id against those in flight.
    fn run(active: &mut Active, count: usize, window: usize, mut pick: impl FnMut(usize) -> usize) {
        let mut live: HashSet<u16> = active.inflight.iter().map(|i| i.packet_id.get()).collect();
        for n in 0..count {
            let id = active.alloc_packet_id();
            assert!(
                live.insert(id.get()),
                "id {id} handed out while in flight (message {n})"
            );
            active.inflight.push_back(inflight(id));
            if active.inflight.len() >= window {
                let pos = pick(active.inflight.len());
                let done = active.inflight.remove(pos).unwrap();
                live.remove(&done.packet_id.get());
            }
        }
    }

    /// A small linear congruential generator: the same run every time.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn acknowledged_in_any_order_no_id_in_flight_is_handed_out_again() {
        let mut active = Active::default();
        let mut seed = 7;
        // Mostly the oldest, as clients acknowledge; now and then any, as QoS 2 and
        // interleaved acknowledgements do. Four rounds of the id space.
        run(&mut active, 4 * 65_536, 100, |len| {
            match lcg(&mut seed) % 8 {
                0 => lcg(&mut seed) as usize % len,
                _ => 0,
            }
        });
    }

    #[test]
    fn an_id_held_for_a_whole_round_is_skipped() {
        let mut active = Active::default();
        // The first message is never acknowledged: the count comes round to it, and then to
        // the ones behind it, which are skipped while they stay in flight.
        run(
            &mut active,
            3 * 65_536,
            50,
            |len| if len > 1 { 1 } else { 0 },
        );
        let first = active.inflight.front().unwrap().packet_id.get();
        assert_eq!(first, 1, "the first id stayed in flight throughout");
        // A window full of consecutive ids from one round ago, plus the held one.
        let mut held = Active::default();
        held.inflight
            .push_back(inflight(NonZeroU16::new(5).unwrap()));
        for id in 6..=20 {
            held.inflight
                .push_back(inflight(NonZeroU16::new(id).unwrap()));
        }
        held.next_packet_id = 4;
        assert_eq!(held.alloc_packet_id().get(), 21);
    }

    #[test]
    fn ids_from_elsewhere_are_all_looked_through() {
        let mut active = Active::default();
        // As a store or another node gives them back: not in the order handed out here.
        for id in [9, 3, 4] {
            active
                .inflight
                .push_back(inflight(NonZeroU16::new(id).unwrap()));
        }
        active.mix_ids();
        active.next_packet_id = 2;
        assert_eq!(active.alloc_packet_id().get(), 5);
        let mut seed = 11;
        run(&mut active, 2 * 65_536, 64, |len| {
            lcg(&mut seed) as usize % len
        });
    }
}
