//! A small, fast random number generator for jitter.
//!
//! Jitter needs spread, not secrecy: SplitMix64 seeded once per request from the process's
//! random hasher keys and a counter is plenty, and costs nothing until a retry needs it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator with a seed that differs between requests and between processes.
    pub(crate) fn new() -> Self {
        static BASE: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // The process's random hasher keys, hashed once; then a counter, mixed by SplitMix.
        let base = *BASE.get_or_init(|| RandomState::new().build_hasher().finish());
        let mut rng = Rng(base ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32));
        rng.next_u64();
        rng
    }

    /// A generator that always yields the same sequence.
    #[cfg(test)]
    pub(crate) fn from_seed(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }
}

/// The seeds a layer given a seed draws its requests' generators from, in the order they
/// ask: the same for every run that asks in the same order.
#[derive(Debug)]
pub(crate) struct Seeds(AtomicU64);

impl Seeds {
    pub(crate) fn new(seed: u64) -> Self {
        Seeds(AtomicU64::new(seed))
    }

    /// The generator of the next request to ask.
    pub(crate) fn next(&self) -> Rng {
        let mut state = self.0.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        Rng(splitmix64(&mut state))
    }
}

/// One step of SplitMix64 on `state`: the next number of the sequence it seeds.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_gives_same_sequence() {
        let a: Vec<u64> = {
            let mut r = Rng::from_seed(7);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::from_seed(7);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn fresh_generators_differ() {
        assert_ne!(Rng::new().next_u64(), Rng::new().next_u64());
    }
}
