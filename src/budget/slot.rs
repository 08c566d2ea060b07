//! One bucket of the budget's window: its epoch's tag and its amount, in one atomic word.

/// One bucket, packed in a `u64` so that its epoch and its amount change together: the low
/// 16 bits of the epoch it holds, and a signed 48-bit amount (±1.4 × 10⁸ retries).
///
/// A bucket is only ever changed by a compare-and-swap of the whole word: a deposit or a
/// withdrawal adds to its epoch's amount, the first one of a later epoch takes it over and
/// expires what it held, and the thread that moves the window empties those that left it.
/// So no amount is counted twice or lost, whatever the interleaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) tag: u16,
    pub(super) amount: i64,
}

/// How a bucket's epoch compares with another's, from their tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Age {
    Same,
    Older,
    Newer,
}

impl Slot {
    pub(super) const AMOUNT_BITS: u32 = 48;
    /// Epochs whose tags are equal are a multiple of this apart.
    pub(super) const ALIAS: u64 = 1 << 16;

    #[inline]
    pub(super) fn tag_of(epoch: u64) -> u16 {
        epoch as u16
    }

    /// The bucket word, or `None` when `amount` does not fit in 48 bits.
    #[inline]
    pub(super) fn pack(tag: u16, amount: i64) -> Option<u64> {
        let limit = 1i64 << (Self::AMOUNT_BITS - 1);
        if !(-limit..limit).contains(&amount) {
            return None;
        }
        let low = (amount as u64) & ((1u64 << Self::AMOUNT_BITS) - 1);
        Some(u64::from(tag) << Self::AMOUNT_BITS | low)
    }

    #[inline]
    pub(super) fn unpack(word: u64) -> Slot {
        let shift = 64 - Self::AMOUNT_BITS;
        Slot {
            tag: (word >> Self::AMOUNT_BITS) as u16,
            // Sign-extends the low 48 bits.
            amount: ((word << shift) as i64) >> shift,
        }
    }

    /// How the bucket holding `held` compares with epoch tag `tag`. Tags wrap every 65 536
    /// buckets, so this is exact for epochs less than 32 768 buckets apart; the window moves
    /// so that live epochs never are further apart than that, and `advance` deals with a
    /// window that jumped further.
    #[inline]
    pub(super) fn age(tag: u16, held: u16) -> Age {
        match tag.wrapping_sub(held) {
            0 => Age::Same,
            d if d < 1 << 15 => Age::Older,
            _ => Age::Newer,
        }
    }
}

#[cfg(test)]
mod tests;
