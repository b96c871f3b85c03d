//! The pool of outgoing packet identifiers.
//!
//! Identifiers are a resource of their own, independent of the send quota: a
//! QoS 1/2 publish, a SUBSCRIBE and an UNSUBSCRIBE each hold one from the moment
//! the session accepts them until their flow ends. An identifier is never 0
//! (MQTT-2.3.1-1) and never handed out while it is still held (MQTT-2.3.1-2), so
//! acknowledgements arriving in any order can never be confused.

/// Number of usable identifiers (1..=65535).
pub(crate) const PACKET_ID_COUNT: usize = u16::MAX as usize;

const WORDS: usize = 1 << 10; // 1024 words of 64 bits: one bit per u16 value.

/// A set of identifiers in use, with round-robin allocation: a freshly released
/// identifier is the last to be reused, which keeps a late or duplicated
/// acknowledgement from a peer from matching a new flow.
#[derive(Clone)]
pub(crate) struct PacketIdPool {
    used: Box<[u64; WORDS]>,
    in_use: usize,
    /// Where the next search starts.
    next: u16,
}

impl std::fmt::Debug for PacketIdPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketIdPool")
            .field("in_use", &self.in_use)
            .field("next", &self.next)
            .finish()
    }
}

impl Default for PacketIdPool {
    fn default() -> Self {
        let mut used = Box::new([0u64; WORDS]);
        // Identifier 0 is never valid: mark it permanently used.
        if let Some(first) = used.first_mut() {
            *first = 1;
        }
        PacketIdPool {
            used,
            in_use: 0,
            next: 1,
        }
    }
}

impl PacketIdPool {
    fn position(id: u16) -> (usize, u64) {
        (usize::from(id >> 6), 1u64 << (id & 63))
    }

    /// Whether `id` is currently held.
    pub(crate) fn contains(&self, id: u16) -> bool {
        if id == 0 {
            return false;
        }
        let (word, bit) = Self::position(id);
        self.used.get(word).is_some_and(|w| w & bit != 0)
    }

    /// How many identifiers are held.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// How many identifiers can still be allocated.
    pub(crate) fn available(&self) -> usize {
        PACKET_ID_COUNT - self.in_use
    }

    /// Takes a free identifier, `None` when all 65535 are held.
    pub(crate) fn allocate(&mut self) -> Option<u16> {
        if self.in_use >= PACKET_ID_COUNT {
            return None;
        }
        let mut id = self.next.max(1);
        // At most one full lap over the 1024 words (plus the partial first one).
        for _ in 0..=(WORDS * 64) {
            let (word_index, bit) = Self::position(id);
            let word = self.used.get(word_index).copied().unwrap_or(u64::MAX);
            if word == u64::MAX {
                // Whole word taken: jump to the first id of the next word.
                id = id.checked_add(64 - (id & 63)).unwrap_or(1);
                continue;
            }
            if word & bit == 0 {
                if let Some(slot) = self.used.get_mut(word_index) {
                    *slot |= bit;
                }
                self.in_use += 1;
                self.next = id.checked_add(1).unwrap_or(1);
                return Some(id);
            }
            id = id.checked_add(1).unwrap_or(1);
        }
        None
    }

    /// Gives `id` back. Returns false if it was not held.
    pub(crate) fn release(&mut self, id: u16) -> bool {
        if !self.contains(id) {
            return false;
        }
        let (word, bit) = Self::position(id);
        if let Some(slot) = self.used.get_mut(word) {
            *slot &= !bit;
        }
        self.in_use -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_zero_and_exhausts_at_65535_mqtt_2_3_1_1() {
        let mut pool = PacketIdPool::default();
        let mut seen = vec![false; 65536];
        for _ in 0..PACKET_ID_COUNT {
            let id = pool.allocate().unwrap();
            assert_ne!(id, 0);
            assert!(!seen[usize::from(id)], "id {id} handed out twice");
            seen[usize::from(id)] = true;
        }
        assert_eq!(pool.allocate(), None);
        assert_eq!(pool.available(), 0);
        assert!(pool.release(4242));
        assert_eq!(pool.allocate(), Some(4242));
    }

    #[test]
    fn released_ids_are_reused_last_mqtt_2_3_1_2() {
        let mut pool = PacketIdPool::default();
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert!(pool.release(a));
        let c = pool.allocate().unwrap();
        assert_ne!(
            c, a,
            "a just-released id is not reused while others are free"
        );
        assert_ne!(c, b);
        assert!(!pool.release(a), "double release is refused");
        assert!(!pool.release(0));
    }

    #[test]
    fn wraps_around_past_65535() {
        let mut pool = PacketIdPool::default();
        for _ in 0..PACKET_ID_COUNT {
            pool.allocate().unwrap();
        }
        assert!(pool.release(3));
        assert!(pool.release(65535));
        // The cursor wrapped to 1 after 65535 was handed out.
        assert_eq!(pool.allocate(), Some(3));
        assert_eq!(pool.allocate(), Some(65535));
        assert_eq!(pool.in_use(), PACKET_ID_COUNT);
    }
}
