//! Which orders the view may hold, in about 1.2 bytes per order: a lookup of an order the
//! view has never seen (every order during a rebuild, every new order at intake) answers
//! "not here" without reading the store. A Bloom filter answers "no" for certain and "maybe"
//! for about 1 in 100 ids it never saw; a "maybe" costs the store read it would have cost
//! anyway.

use fastbloom::BloomFilter;
use uuid::Uuid;

/// False "maybe" answers per id never seen.
const FALSE_POSITIVE_RATE: f64 = 0.01;
/// Ids the first filter is sized for.
const FIRST_CAPACITY: usize = 100_000;
/// Fixed, so the filter does not need a random source; a crafted id that collides only
/// costs the store read every lookup used to cost.
const SEED: u128 = 0x6f72_6465_7266_6c6f_7776_6965_7700_0001;

/// Filters of doubling capacity: ids go into the newest, a lookup asks all of them (a
/// filter's false positive rate climbs past its capacity, and it cannot be resized without
/// its ids). Ids removed from the store stay (a "maybe" that reads nothing).
pub struct Presence {
    filters: Vec<(BloomFilter, usize)>,
    /// Ids in the newest filter.
    in_newest: usize,
}

impl Presence {
    /// An empty filter sized for `expected` ids first.
    pub fn new(expected: usize) -> Presence {
        Presence {
            filters: vec![filter(expected.max(FIRST_CAPACITY))],
            in_newest: 0,
        }
    }

    /// Notes that the view holds `id`.
    pub fn insert(&mut self, id: &Uuid) {
        let (newest, capacity) = self.filters.last_mut().expect("never empty");
        if self.in_newest >= *capacity {
            let next = filter(*capacity * 2);
            self.filters.push(next);
            self.in_newest = 0;
            return self.insert(id);
        }
        newest.insert(id.as_bytes());
        self.in_newest += 1;
    }

    /// False when the view certainly does not hold `id`.
    pub fn may_hold(&self, id: &Uuid) -> bool {
        self.filters.iter().any(|(f, _)| f.contains(id.as_bytes()))
    }
}

fn filter(capacity: usize) -> (BloomFilter, usize) {
    let bloom = BloomFilter::with_false_pos(FALSE_POSITIVE_RATE)
        .seed(&SEED)
        .expected_items(capacity);
    (bloom, capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inserted_id_may_be_held_and_most_others_are_not_past_its_first_capacity() {
        let mut presence = Presence::new(1_000);
        let held: Vec<Uuid> = (0..250_000).map(|_| Uuid::new_v4()).collect();
        for id in &held {
            presence.insert(id);
        }
        assert!(presence.filters.len() > 1, "grew past its first capacity");
        assert!(held.iter().all(|id| presence.may_hold(id)));
        let strangers = (0..100_000)
            .filter(|_| presence.may_hold(&Uuid::new_v4()))
            .count();
        // Two filters, each ≤ 1%: well under 3% in all.
        assert!(
            strangers < 3_000,
            "{strangers} of 100,000 unknown ids answered maybe"
        );
    }
}
