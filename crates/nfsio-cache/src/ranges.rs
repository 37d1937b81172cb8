//! A small set of disjoint half-open byte ranges.
//!
//! The read path needs set algebra on a handful of ranges (what a READ may still fill, what a
//! file still wants read); a sorted vector is the simplest structure that is fast at that size.

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

    /// Adds `[start, end)`, merging with overlapping or adjacent ranges.
    pub(crate) fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut new_start = start;
        let mut new_end = end;
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut placed = false;
        for &(s, e) in &self.ranges {
            if e < new_start {
                out.push((s, e));
            } else if s > new_end {
                if !placed {
                    out.push((new_start, new_end));
                    placed = true;
                }
                out.push((s, e));
            } else {
                new_start = new_start.min(s);
                new_end = new_end.max(e);
            }
        }
        if !placed {
            out.push((new_start, new_end));
        }
        self.ranges = out;
    }

    /// Removes `[start, end)`.
    pub(crate) fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        for &(s, e) in &self.ranges {
            if e <= start || s >= end {
                out.push((s, e));
                continue;
            }
            if s < start {
                out.push((s, start));
            }
            if e > end {
                out.push((end, e));
            }
        }
        self.ranges = out;
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

#[cfg(test)]
mod tests {
    use super::*;

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
