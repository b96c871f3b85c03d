//! The pool of outgoing packet identifiers.
//!
//! Identifiers are a resource of their own, independent of the send quota: a
//! QoS 1/2 publish, a SUBSCRIBE and an UNSUBSCRIBE each hold one from the moment
//! the session accepts them until their flow ends. An identifier is never 0
//! (MQTT-2.3.1-1) and never handed out while it is still held (MQTT-2.3.1-2), so
//! acknowledgements arriving in any order can never be confused.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Number of usable identifiers (1..=65535).
pub(crate) const PACKET_ID_COUNT: usize = u16::MAX as usize;

/// A map keyed by packet identifier. The keys are at most 65535 small
/// integers, so flooding needs no keyed hash: a multiplicative hash is faster
/// than SipHash and its zero-sized builder keeps the map 16 bytes smaller.
pub(crate) type PacketIdMap<V> = HashMap<u16, V, BuildHasherDefault<IdHasher>>;

/// A hasher for small integer keys from a bounded or locally generated set
/// (packet identifiers, request ids, subscription keys), where flooding needs
/// no keyed hash: Fibonacci hashing of the key, an odd multiplier keeping
/// distinct low bits distinct (the bucket index) and filling the high bits
/// (the control byte). Stateless, so a map using it is 16 bytes smaller than
/// with `RandomState`.
#[derive(Debug, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u16(&mut self, value: u16) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Words of 64 bits per page: one page covers 4096 identifiers.
const PAGE_WORDS: usize = 64;
const IDS_PER_PAGE: usize = PAGE_WORDS * 64;
/// Pages covering every u16 value.
const PAGES: usize = (1 << 16) / IDS_PER_PAGE;

type Page = Box<[u64; PAGE_WORDS]>;

/// A set of identifiers in use, with round-robin allocation: a freshly released
/// identifier is the last to be reused, which keeps a late or duplicated
/// acknowledgement from a peer from matching a new flow.
///
/// One bit per identifier, in pages of 4096 allocated when an identifier of
/// theirs is first taken: an idle session (most connections, most of the
/// time) holds no bitmap at all instead of 8 KiB.
#[derive(Clone)]
pub(crate) struct PacketIdPool {
    /// `None` while no page is allocated: the pool then costs a pointer.
    table: Option<Box<PageTable>>,
    in_use: usize,
    /// Where the next search starts.
    next: u16,
}

#[derive(Clone, Default)]
struct PageTable {
    pages: [Option<Page>; PAGES],
    /// Identifiers held in each page.
    held_in_page: [u16; PAGES],
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
        PacketIdPool {
            table: None,
            in_use: 0,
            next: 1,
        }
    }
}

impl PacketIdPool {
    /// Page, word within the page and bit of `id`.
    fn position(id: u16) -> (usize, usize, u64) {
        let index = usize::from(id);
        (
            index / IDS_PER_PAGE,
            (index % IDS_PER_PAGE) / 64,
            1u64 << (id & 63),
        )
    }

    fn word(&self, id: u16) -> u64 {
        let (page, word, _) = Self::position(id);
        match self.table.as_ref().and_then(|table| table.pages.get(page)) {
            Some(Some(bits)) => bits.get(word).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether `id` is currently held.
    pub(crate) fn contains(&self, id: u16) -> bool {
        let (_, _, bit) = Self::position(id);
        id != 0 && self.word(id) & bit != 0
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
        // At most one full lap over every word (plus the partial first one).
        for _ in 0..=(PAGES * PAGE_WORDS * 64) {
            if id == 0 {
                // Identifier 0 is never valid (MQTT-2.3.1-1).
                id = 1;
            }
            let word = self.word(id);
            if word == u64::MAX {
                // Whole word taken: jump to the first id of the next word.
                id = id.checked_add(64 - (id & 63)).unwrap_or(1);
                continue;
            }
            let (page_index, word_index, bit) = Self::position(id);
            if word & bit == 0 {
                let table = self.table.get_or_insert_with(Box::default);
                let (Some(page), Some(held)) = (
                    table.pages.get_mut(page_index),
                    table.held_in_page.get_mut(page_index),
                ) else {
                    return None;
                };
                let bits = page.get_or_insert_with(|| Box::new([0; PAGE_WORDS]));
                if let Some(slot) = bits.get_mut(word_index) {
                    *slot |= bit;
                }
                *held += 1;
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
        let (page_index, word_index, bit) = Self::position(id);
        let (cursor_page, _, _) = Self::position(self.next.max(1));
        if let Some(table) = self.table.as_mut() {
            if let Some(Some(bits)) = table.pages.get_mut(page_index) {
                if let Some(slot) = bits.get_mut(word_index) {
                    *slot &= !bit;
                }
            }
            if let Some(held) = table.held_in_page.get_mut(page_index) {
                *held = held.saturating_sub(1);
                // An empty page goes, except the one allocation continues in:
                // sequential flows then allocate one page per 4096
                // identifiers, not one per flow.
                if *held == 0 && page_index != cursor_page {
                    if let Some(page) = table.pages.get_mut(page_index) {
                        *page = None;
                    }
                }
            }
        }
        self.in_use -= 1;
        true
    }

    /// Frees every page that holds no identifier (the cursor's too), for a
    /// session going idle. Allocation order is unchanged.
    pub(crate) fn release_memory(&mut self) {
        if self.in_use == 0 {
            self.table = None;
            return;
        }
        if let Some(table) = self.table.as_mut() {
            for (page, held) in table.pages.iter_mut().zip(table.held_in_page) {
                if held == 0 {
                    *page = None;
                }
            }
        }
    }

    /// Bitmap pages currently allocated.
    #[cfg(test)]
    fn pages_allocated(&self) -> usize {
        self.table.as_ref().map_or(0, |table| {
            table.pages.iter().filter(|page| page.is_some()).count()
        })
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

    #[test]
    fn idle_pool_holds_no_bitmap_and_frees_pages_it_no_longer_needs() {
        let mut pool = PacketIdPool::default();
        assert_eq!(pool.pages_allocated(), 0);
        let first = pool.allocate().unwrap();
        assert_eq!(pool.pages_allocated(), 1);
        // Sequential flows stay within the cursor's page.
        for _ in 0..100 {
            let id = pool.allocate().unwrap();
            assert!(pool.release(id));
        }
        assert_eq!(pool.pages_allocated(), 1);
        // Crossing into the next page: the previous one goes once empty.
        let mut held = Vec::new();
        for _ in 0..IDS_PER_PAGE {
            held.push(pool.allocate().unwrap());
        }
        assert_eq!(pool.pages_allocated(), 2);
        assert!(pool.release(first));
        for id in held.iter().filter(|id| usize::from(**id) < IDS_PER_PAGE) {
            assert!(pool.release(*id));
        }
        assert_eq!(pool.pages_allocated(), 1);
        for id in held.iter().filter(|id| usize::from(**id) >= IDS_PER_PAGE) {
            assert!(pool.release(*id));
        }
        assert_eq!(pool.in_use(), 0);
        pool.release_memory();
        assert_eq!(pool.pages_allocated(), 0);
        // Round-robin order survives freeing the memory.
        let last = held.last().copied().unwrap();
        let next = pool.allocate().unwrap();
        assert_eq!(next, last + 1);
        assert!(pool.contains(next));
        assert!(!pool.contains(next - 1));
    }
}
