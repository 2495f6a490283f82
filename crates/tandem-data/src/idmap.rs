//! Dense `u32` indices for raw string ids, and back.

use std::collections::HashMap;

/// A bijection between raw ids (kept as strings: leading zeros and hex survive) and dense
/// indices `0..len()`, assigned in order of first appearance.
#[derive(Debug, Clone, Default)]
pub struct IdMap {
    raw: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl IdMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of `raw`, inserting it if it is new.
    pub fn get_or_insert(&mut self, raw: &str) -> u32 {
        if let Some(&i) = self.index.get(raw) {
            return i;
        }
        let i = u32::try_from(self.raw.len()).expect("more than u32::MAX distinct ids");
        let boxed: Box<str> = raw.into();
        self.raw.push(boxed.clone());
        self.index.insert(boxed, i);
        i
    }

    /// The index of `raw`, if known.
    pub fn get(&self, raw: &str) -> Option<u32> {
        self.index.get(raw).copied()
    }

    /// The raw id of index `i`. Panics if `i >= len()` (an internal invariant).
    pub fn raw(&self, i: u32) -> &str {
        &self.raw[i as usize]
    }

    /// Number of distinct ids.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// True when no id has been inserted.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// All raw ids in index order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.raw.iter().map(|s| &**s)
    }
}

/// Orders raw ids the way people expect: numerically when both are decimal integers
/// ("9" < "10"), otherwise as strings. Used for documented tie-breaks (e.g. the temporal split).
pub fn cmp_raw_ids(a: &str, b: &str) -> std::cmp::Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        let (ta, tb) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb)).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn keeps_leading_zeros_and_order_of_first_appearance() {
        let mut m = IdMap::new();
        assert_eq!(m.get_or_insert("0108775015"), 0);
        assert_eq!(m.get_or_insert("108775015"), 1);
        assert_eq!(m.get_or_insert("0108775015"), 0);
        assert_eq!(m.raw(0), "0108775015");
        assert_eq!(m.get("x"), None);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn raw_ids_compare_numerically_when_numeric() {
        assert_eq!(cmp_raw_ids("9", "10"), Ordering::Less);
        assert_eq!(cmp_raw_ids("010", "9"), Ordering::Greater);
        assert_eq!(cmp_raw_ids("abc", "abd"), Ordering::Less);
        assert_eq!(cmp_raw_ids("85123A", "85123B"), Ordering::Less);
    }
}
