//! The one random source of Wasl's synthetic data (the histories here and the demo network): a
//! small deterministic PRNG, xoshiro256** seeded through splitmix64. Not for secrets; it only has
//! to make the same data from the same seed on every machine, so everything here is integer
//! arithmetic. Chances are in per mille and weights are whole numbers, so no float rounding can
//! make two machines disagree.

/// xoshiro256** (Blackman and Vigna), seeded with splitmix64. The whole sequence follows from the
/// seed.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole sequence follows from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut splitmix = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self {
            s: [splitmix(), splitmix(), splitmix(), splitmix()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A number in `0..n` (0 when `n` is 0), by Lemire's multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// An index into a collection of `len` items (0 when empty).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A number in `lo..=hi` (`lo` at most `hi`).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille` / 1000 (never for 0, always for 1000 or more).
    pub fn chance_per_mille(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// One item of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// One item of non-empty `(item, weight)` pairs, with probability proportional to its weight.
    pub fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut r = self.below(total);
        for (item, w) in items {
            let w = u64::from(*w);
            if r < w {
                return item;
            }
            r -= w;
        }
        &items[items.len() - 1].0
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        self.fill(&mut out);
        out
    }

    /// Removes and returns one item chosen with probability proportional to its weight; `None`
    /// when no item has weight left.
    pub fn take_weighted<T>(&mut self, items: &mut Vec<(T, u32)>) -> Option<T> {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut r = self.below(total);
        let at = items
            .iter()
            .position(|(_, w)| {
                let w = u64::from(*w);
                if r < w {
                    true
                } else {
                    r -= w;
                    false
                }
            })
            .unwrap_or(items.len() - 1);
        Some(items.swap_remove(at).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_another_seed_another() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn bounded_draws_stay_in_range_and_reach_both_ends() {
        let mut rng = Rng::new(1);
        let draws: Vec<u64> = (0..10_000).map(|_| rng.between(3, 9)).collect();
        assert!(draws.iter().all(|d| (3..=9).contains(d)));
        assert!(draws.contains(&3) && draws.contains(&9));
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn weighted_choices_follow_their_weights_and_never_take_a_zero_weight() {
        let mut rng = Rng::new(3);
        let items = [('a', 0), ('b', 3), ('c', 1)];
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            match rng.weighted(&items) {
                'a' => counts[0] += 1,
                'b' => counts[1] += 1,
                _ => counts[2] += 1,
            }
        }
        assert_eq!(counts[0], 0);
        assert!((29_000..31_000).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn chances_are_in_per_mille() {
        let mut rng = Rng::new(4);
        let hits = (0..100_000).filter(|_| rng.chance_per_mille(250)).count();
        assert!((24_000..26_000).contains(&hits), "{hits} of 100000");
        assert!(!(0..1_000).any(|_| rng.chance_per_mille(0)));
        assert!((0..1_000).all(|_| rng.chance_per_mille(1_000)));
    }

    #[test]
    fn weighted_choice_never_takes_a_zero_weight_and_takes_each_item_once() {
        let mut rng = Rng::new(2);
        let mut items = vec![('a', 0), ('b', 5), ('c', 1)];
        let mut taken = Vec::new();
        while let Some(item) = rng.take_weighted(&mut items) {
            taken.push(item);
        }
        taken.sort_unstable();
        assert_eq!(taken, vec!['b', 'c']);
    }
}
