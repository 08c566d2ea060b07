//! [`Budgets`]: the budget a layer pays retries from: one for every request, or one per
//! destination.

use std::cell::RefCell;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::request;
use http::uri::{Authority, Scheme};
use tokio::time::Instant;

use super::{Budget, Spend};
use crate::authority::{PerKey, authority_of};

/// Where a request's retries are paid from.
#[derive(Clone)]
pub(crate) enum Budgets {
    /// One budget for every request.
    Shared(Budget),
    /// One budget per destination, each with the template's settings.
    Keyed(Arc<Keyed>),
}

/// What a request's destination is, for its budget.
pub(crate) type KeyFn = Arc<dyn Fn(&request::Parts) -> Option<String> + Send + Sync>;

/// Budgets per destination.
pub(crate) struct Keyed {
    /// The settings of every destination's budget; never paid from itself.
    template: Budget,
    /// How a request names its destination: its origin, unless told otherwise.
    key: Option<KeyFn>,
    accounts: PerKey<Destination, Budget, BuildHasherDefault<Prehashed>>,
    /// The budget the destinations past the limit share, while every kept one is in use.
    overflow: Budget,
    /// Tells these budgets from any other in the process's threads' caches.
    id: u64,
}

#[cfg(not(retryable_http_loom))]
thread_local! {
    /// The destination this thread last found a budget for, and that budget: a thread
    /// sends to one host many times in a row, and then finds its budget without a lock.
    static LAST: RefCell<Option<Last>> = const { RefCell::new(None) };
}

#[cfg(retryable_http_loom)]
loom::thread_local! {
    static LAST: RefCell<Option<Last>> = RefCell::new(None);
}

/// A thread's cached destination.
struct Last {
    owner: u64,
    scheme: Option<Scheme>,
    authority: Inline,
    budget: Budget,
}

/// An authority of up to [`Inline::MAX`] bytes, held by value: remembering one allocates
/// nothing, however often a thread's destination changes.
struct Inline {
    len: u8,
    bytes: [u8; Inline::MAX],
}

impl Inline {
    const MAX: usize = 64;

    /// `authority`, when it is short enough to be held.
    fn new(authority: &str) -> Option<Self> {
        let len = authority.len();
        let mut bytes = [0; Self::MAX];
        bytes.get_mut(..len)?.copy_from_slice(authority.as_bytes());
        Some(Inline {
            len: len as u8,
            bytes,
        })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A destination: a scheme and authority, or a name a key function gave, with its hash
/// worked out once. A clone, which the map keeps, holds its authority in bytes of its own.
#[derive(Debug)]
struct Destination {
    hash: u64,
    name: Name,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Name {
    Origin(Option<Scheme>, Authority),
    Named(Box<str>),
}

impl Destination {
    fn origin(scheme: Option<&Scheme>, authority: Authority) -> Self {
        // The two schemes nearly every request has are a number; others are hashed.
        let seed = match scheme {
            None => SEED,
            Some(s) if *s == Scheme::HTTP => SEED ^ 1,
            Some(s) if *s == Scheme::HTTPS => SEED ^ 2,
            Some(s) => hash_any_case(SEED, s.as_str().as_bytes()),
        };
        let hash = hash_any_case(seed, authority.as_str().as_bytes());
        Destination {
            hash,
            name: Name::Origin(scheme.cloned(), authority),
        }
    }

    fn named(name: String) -> Self {
        Destination {
            // Apart from the origins: a name cannot equal one.
            hash: hash_any_case(!SEED, name.as_bytes()),
            name: Name::Named(name.into()),
        }
    }
}

impl Clone for Destination {
    fn clone(&self) -> Self {
        let name = match &self.name {
            Name::Origin(scheme, authority) => Name::Origin(scheme.clone(), owned(authority)),
            Name::Named(name) => Name::Named(name.clone()),
        };
        Destination {
            hash: self.hash,
            name,
        }
    }
}

impl PartialEq for Destination {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && match (&self.name, &other.name) {
                // The same bytes, as a client sends them again and again, before any case.
                (Name::Origin(s1, a1), Name::Origin(s2, a2)) => {
                    s1 == s2 && (a1.as_str() == a2.as_str() || a1 == a2)
                }
                (a, b) => a == b,
            }
    }
}

impl Eq for Destination {}

impl Hash for Destination {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// A hash of `bytes` that ignores ASCII case, eight bytes at a time.
// NOTE: every byte is hashed with bit 5 set, which folds the case of letters and merges a
// few other pairs of bytes: names that collide are still told apart by `Eq`, and the map
// is bounded, so a collision costs one comparison more.
fn hash_any_case(mut hash: u64, bytes: &[u8]) -> u64 {
    const CASE: u64 = 0x2020_2020_2020_2020;
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        hash = (hash.rotate_left(5) ^ (word | CASE)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    // `rest` is shorter than 8 bytes: the case bit of those it has.
    let case = CASE & ((1u64 << (8 * rest.len())) - 1);
    let word = (u64::from_le_bytes(tail) | case) ^ ((bytes.len() as u64) << 56);
    (hash.rotate_left(5) ^ word).wrapping_mul(K)
}

/// A hasher for keys that hash themselves: it keeps the one `u64` they write.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Destination`; kept correct for any other key.
        self.0 = hash_any_case(self.0, bytes);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Budgets {
    /// A budget per origin (scheme, host and port), each with `template`'s settings.
    pub(crate) fn per_origin(template: Budget) -> Self {
        Budgets::keyed(template, None)
    }

    /// A budget per destination `key` names, each with `template`'s settings; requests it
    /// names none for share one.
    pub(crate) fn keyed(template: Budget, key: Option<KeyFn>) -> Self {
        Budgets::Keyed(Arc::new(Keyed::new(template, key, PerKey::new())))
    }

    /// Records a first attempt of `head` at `now`.
    #[inline]
    pub(crate) fn deposit(&self, head: &request::Parts, now: Instant) {
        match self {
            Budgets::Shared(budget) => budget.deposit_at(now),
            Budgets::Keyed(keyed) => keyed.with_account(head, now, |b| b.deposit_at(now)),
        }
    }

    /// Gives back the retry of `head` [`withdraw`](Self::withdraw) took at `now`.
    pub(crate) fn refund(&self, head: &request::Parts, now: Instant) {
        match self {
            Budgets::Shared(budget) => budget.refund_at(now),
            Budgets::Keyed(keyed) => keyed.with_account(head, now, |b| b.refund_at(now)),
        }
    }

    /// Takes one attempt after the first of `head`, for `spend`, from its budget at `now`;
    /// `false` when it refuses.
    pub(crate) fn spend(&self, head: &request::Parts, now: Instant, spend: Spend) -> bool {
        match self {
            Budgets::Shared(budget) => budget.spend_at(now, spend),
            Budgets::Keyed(keyed) => keyed.with_account(head, now, |b| b.spend_at(now, spend)),
        }
    }

    /// Takes one retry of `head` from its budget's balance at `now`, whatever its throttle
    /// says; `false` when it refuses.
    #[cfg(test)]
    pub(crate) fn withdraw(&self, head: &request::Parts, now: Instant) -> bool {
        self.spend(head, now, Spend::Unprocessed)
    }
}

impl Keyed {
    fn new(
        template: Budget,
        key: Option<KeyFn>,
        accounts: PerKey<Destination, Budget, BuildHasherDefault<Prehashed>>,
    ) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(0);
        Keyed {
            overflow: template.fresh(),
            template,
            key,
            accounts,
            id: IDS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Calls `f` with the budget of `head`'s destination at `now`. A destination seen for
    /// the first time gets a budget of its own; when the most destinations are kept, those
    /// idle for a window are forgotten first (they hold their reserve and nothing else, as
    /// a new one would), and if none is, the new destination pays from the overflow
    /// budget.
    #[inline]
    fn with_account<R>(
        &self,
        head: &request::Parts,
        now: Instant,
        f: impl FnOnce(&Budget) -> R,
    ) -> R {
        let uri = (self.key.is_none()).then(|| head.uri.authority()).flatten();
        let Some(authority) = uri else {
            return self.look_up(head, now, |budget, _| f(budget));
        };
        let mut f = Some(f);
        let cached = LAST.with(|last| {
            let last = last.borrow();
            match &*last {
                Some(last)
                    if last.owner == self.id
                        && last.authority.as_bytes() == authority.as_str().as_bytes()
                        && last.scheme.as_ref() == head.uri.scheme() =>
                {
                    Some((f.take().expect("called once"))(&last.budget))
                }
                _ => None,
            }
        });
        if let Some(result) = cached {
            return result;
        }
        let f = f.take().expect("not called");
        // What this thread remembered of these budgets is let go first: it would keep a
        // budget the lookup may have to forget.
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            if last.as_ref().is_some_and(|last| last.owner == self.id) {
                *last = None;
            }
        });
        self.look_up(head, now, |budget, kept| {
            // A budget the map keeps is remembered: the map cannot forget it while this
            // thread holds it, so it stays the destination's. The overflow budget is not:
            // the next request looks for room again. A longer authority is looked up each
            // time.
            if let (true, Some(inline)) = (kept, Inline::new(authority.as_str())) {
                LAST.with(|last| {
                    *last.borrow_mut() = Some(Last {
                        owner: self.id,
                        scheme: head.uri.scheme().cloned(),
                        authority: inline,
                        budget: budget.clone(),
                    });
                });
            }
            f(budget)
        })
    }

    /// [`with_account`](Self::with_account), through the map. `f` learns whether the
    /// budget is the destination's own, or the overflow budget.
    #[inline(never)]
    fn look_up<R>(
        &self,
        head: &request::Parts,
        now: Instant,
        f: impl FnOnce(&Budget, bool) -> R,
    ) -> R {
        let destination = match &self.key {
            None => authority_of(head).map(|a| Destination::origin(head.uri.scheme(), a)),
            Some(key) => key(head).map(Destination::named),
        };
        self.accounts.with(
            destination.as_ref(),
            || self.template.fresh(),
            // A budget a thread remembers is kept: were it forgotten, the thread could
            // still pay from it while the next request of its destination paid from a new
            // one. Held is asked first: once no one else holds it, the acquire that asking
            // makes shows this thread all they paid, which `is_active` then reads.
            |budget| budget.is_held_elsewhere() || budget.is_active(now),
            |found| match found {
                Some(budget) => f(budget, true),
                None => f(&self.overflow, false),
            },
        )
    }
}

/// `authority` in bytes of its own: a clone would keep the whole URI it came from alive,
/// for as long as the destination is kept.
fn owned(authority: &Authority) -> Authority {
    let bytes = bytes::Bytes::copy_from_slice(authority.as_str().as_bytes());
    // An authority's own text is always an authority; were it not, the clone still serves.
    Authority::from_maybe_shared(bytes).unwrap_or_else(|_| authority.clone())
}

impl fmt::Debug for Budgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Budgets::Shared(budget) => fmt::Debug::fmt(budget, f),
            Budgets::Keyed(keyed) => f
                .debug_struct("PerDestination")
                .field("each", &keyed.template)
                .field("key", &keyed.key.as_ref().map_or("origin", |_| "custom"))
                .field("destinations", &keyed.accounts.len())
                .finish(),
        }
    }
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

#[cfg(all(test, retryable_http_loom))]
mod loom_models;
