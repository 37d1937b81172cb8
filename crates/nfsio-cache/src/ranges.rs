//! Sets of disjoint half-open byte ranges.
//!
//! The read path needs set algebra on a handful of ranges (what a READ may still fill, what a
//! file still wants read); a sorted vector is the simplest structure that is fast at that size.
//! What a file is known to hold as zeros on the server is fragmented by every application
//! write (tens of thousands of ranges under random writes): a B-tree keeps that logarithmic.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent, sorted half-open ranges `[start, end)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().copied()
    }

    pub(crate) fn first(&self) -> Option<(u64, u64)> {
        self.ranges.first().copied()
    }

    /// Adds `[start, end)`, merging with overlapping or adjacent ranges (in place: no
    /// allocation unless the vector must grow).
    pub(crate) fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Ranges `first..past` touch `[start, end)` (overlap or adjacency).
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        let past = self.ranges.partition_point(|&(s, _)| s <= end);
        if first == past {
            self.ranges.insert(first, (start, end));
            return;
        }
        let merged = (
            start.min(self.ranges[first].0),
            end.max(self.ranges[past - 1].1),
        );
        self.ranges[first] = merged;
        self.ranges.drain(first + 1..past);
    }

    /// Removes `[start, end)` (in place: no allocation unless the vector must grow).
    pub(crate) fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Ranges `first..past` overlap `[start, end)`.
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        let past = self.ranges.partition_point(|&(s, _)| s < end);
        if first >= past {
            return;
        }
        let left = (self.ranges[first].0 < start).then(|| (self.ranges[first].0, start));
        let right = (self.ranges[past - 1].1 > end).then(|| (end, self.ranges[past - 1].1));
        let mut at = first;
        for piece in [left, right].into_iter().flatten() {
            if at < past {
                self.ranges[at] = piece;
            } else {
                self.ranges.insert(at, piece);
            }
            at += 1;
        }
        if at < past {
            self.ranges.drain(at..past);
        }
    }

    /// The parts of `[start, end)` in the set.
    pub(crate) fn intersect(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        self.ranges
            .iter()
            .filter_map(|&(s, e)| {
                let a = s.max(start);
                let b = e.min(end);
                (a < b).then_some((a, b))
            })
            .collect()
    }

    /// True when some byte of `[start, end)` is in the set.
    #[cfg(test)]
    pub(crate) fn overlaps(&self, start: u64, end: u64) -> bool {
        self.ranges.iter().any(|&(s, e)| s < end && start < e)
    }

    /// Total bytes in the set.
    #[cfg(test)]
    pub(crate) fn len_bytes(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }
}

/// Disjoint, non-adjacent half-open ranges `[start, end)` in a B-tree (start -> end), for sets
/// with many ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeTree {
    ranges: BTreeMap<u64, u64>,
}

impl RangeTree {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Removes everything.
    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Adds `[start, end)`, merging with overlapping or adjacent ranges.
    pub(crate) fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut new_start = start;
        let mut new_end = end;
        // A range that starts before `start` and reaches it.
        if let Some((&s, &e)) = self.ranges.range(..start).next_back() {
            if e >= start {
                new_start = s;
                new_end = new_end.max(e);
                self.ranges.remove(&s);
            }
        }
        // Ranges that start within `[start, end]`.
        let inside: Vec<(u64, u64)> = self
            .ranges
            .range(start..=new_end)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in inside {
            new_end = new_end.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(new_start, new_end);
    }

    /// Removes `[start, end)`.
    pub(crate) fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        if let Some((&s, &e)) = self.ranges.range(..start).next_back() {
            if e > start {
                self.ranges.insert(s, start);
                if e > end {
                    self.ranges.insert(end, e);
                    return;
                }
            }
        }
        // No allocation: the ranges that start inside go one at a time, and a tail is put in
        // before its range goes out (a map of one range never empties and refills).
        while let Some((&s, &e)) = self.ranges.range(start..end).next() {
            if e > end {
                self.ranges.insert(end, e);
            }
            self.ranges.remove(&s);
        }
    }

    /// True when every byte of `[start, end)` is in the set (an empty range is).
    pub(crate) fn contains(&self, start: u64, end: u64) -> bool {
        start >= end
            || self
                .ranges
                .range(..=start)
                .next_back()
                .is_some_and(|(_, &e)| e >= end)
    }

    /// The ranges, in order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_tree_and_vector_set_agree_with_a_byte_map() {
        // Deterministic pseudo-random inserts and removes on all three; same ranges after each.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut tree = RangeTree::new();
        let mut set = RangeSet::new();
        // The reference: one flag per byte.
        let mut bytes = vec![false; 1100];
        for _ in 0..5000 {
            let a = next(1000);
            let b = a + next(60);
            let add = next(3) != 0;
            if add {
                tree.insert(a, b);
                set.insert(a, b);
            } else {
                tree.remove(a, b);
                set.remove(a, b);
            }
            bytes[a as usize..b as usize].fill(add);
            let mut expected = Vec::new();
            for (at, &held) in bytes.iter().enumerate() {
                let at = at as u64;
                match expected.last_mut() {
                    Some((_, end)) if held && *end == at => *end += 1,
                    _ if held => expected.push((at, at + 1)),
                    _ => {}
                }
            }
            assert_eq!(set.iter().collect::<Vec<_>>(), expected);
            assert_eq!(
                tree.iter().collect::<Vec<_>>(),
                set.iter().collect::<Vec<_>>()
            );
            let (c, d) = (next(1000), next(1000));
            let (c, d) = (c.min(d), c.max(d));
            let covered: u64 = set.intersect(c, d).iter().map(|(x, y)| y - x).sum();
            assert_eq!(tree.contains(c, d), covered == d - c, "contains({c}, {d})");
        }
    }

    #[test]
    fn insert_merges_overlapping_and_adjacent() {
        let mut set = RangeSet::new();
        set.insert(10, 20);
        set.insert(30, 40);
        set.insert(20, 25);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![(10, 25), (30, 40)]);
        set.insert(0, 100);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![(0, 100)]);
        assert_eq!(set.len_bytes(), 100);
    }

    #[test]
    fn remove_splits() {
        let mut set = RangeSet::new();
        set.insert(0, 100);
        set.remove(10, 20);
        set.remove(90, 200);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![(0, 10), (20, 90)]);
        assert_eq!(set.intersect(5, 25), vec![(5, 10), (20, 25)]);
        assert!(set.overlaps(85, 95));
        assert!(!set.overlaps(10, 20));
    }
}
