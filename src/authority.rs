//! [`PerKey`]: state kept per server or destination, keyed by where a request goes.
//!
//! gRPC's retry throttle is one bucket per server name, and the retry budget one account
//! per destination, so that one server's failures do not stop the retries to another. The
//! map is bounded: past [`PerKey::LIMIT`] keys, the entries that need not be kept are
//! forgotten first.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
#[cfg(feature = "grpc")]
use std::sync::Arc;
use std::sync::{OnceLock, PoisonError};

use http::request;
use http::uri::Authority;

use crate::sync::RwLock;

/// The server a request goes to: the authority of its URI, else its `Host` header, else
/// `None` (a relative URI with no `Host`, as tonic's clients send to the channel under
/// them, which talks to one server).
pub(crate) fn authority_of(head: &request::Parts) -> Option<Authority> {
    if let Some(authority) = head.uri.authority() {
        return Some(authority.clone());
    }
    let host = head.headers.get(http::header::HOST)?;
    Authority::try_from(host.as_bytes()).ok()
}

/// One value per key, made on first use and shared by every request with that key: the
/// state of a server (gRPC's throttle per authority) or of a destination (a retry budget).
/// Keys are bounded: past the limit, the entries that need not be kept are forgotten.
pub(crate) struct PerKey<K, V, S = RandomState> {
    entries: RwLock<HashMap<K, V, S>>,
    /// The value of requests with no key, kept apart: a tonic channel's, found without
    /// hashing or locking.
    unnamed: OnceLock<V>,
    limit: usize,
}

/// One `Arc<T>` per server, by authority.
#[cfg(feature = "grpc")]
pub(crate) type PerAuthority<T> = PerKey<Authority, Arc<T>>;

impl<K: Eq + Hash + Clone, V: Clone, S: BuildHasher + Default> PerKey<K, V, S> {
    /// The most keys kept at once: 1024.
    pub(crate) const LIMIT: usize = 1024;

    pub(crate) fn new() -> Self {
        PerKey::with_limit(Self::LIMIT)
    }

    pub(crate) fn with_limit(limit: usize) -> Self {
        PerKey {
            entries: RwLock::new(HashMap::default()),
            unnamed: OnceLock::new(),
            limit,
        }
    }

    /// Calls `f` with the value of `key`, made with `make` when it has none. When the map
    /// is full, the entries `keep` does not keep are forgotten first; `f` gets `None` when
    /// every one is kept and the new key finds no room.
    #[inline]
    pub(crate) fn with<R>(
        &self,
        key: Option<&K>,
        make: impl FnOnce() -> V,
        keep: impl Fn(&V) -> bool,
        f: impl FnOnce(Option<&V>) -> R,
    ) -> R {
        let Some(key) = key else {
            return f(Some(self.unnamed.get_or_init(make)));
        };
        {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(found) = entries.get(key) {
                return f(Some(found));
            }
        }
        self.insert(key, make, keep, f)
    }

    /// The slow path of [`with`](Self::with): a key seen for the first time.
    #[inline(never)]
    fn insert<R>(
        &self,
        key: &K,
        make: impl FnOnce() -> V,
        keep: impl Fn(&V) -> bool,
        f: impl FnOnce(Option<&V>) -> R,
    ) -> R {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = entries.get(key) {
            return f(Some(found));
        }
        if entries.len() >= self.limit {
            entries.retain(|_, value| keep(value));
            if entries.len() >= self.limit {
                return f(None);
            }
        }
        let value = entries.entry(key.clone()).or_insert_with(make);
        f(Some(value))
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> PerKey<K, V, S> {
    /// Whether `key` is kept.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &K) -> bool {
        (self.entries.read())
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(key)
    }
}

impl<K, V, S> PerKey<K, V, S> {
    /// How many keys are kept.
    pub(crate) fn len(&self) -> usize {
        let named = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        named + usize::from(self.unnamed.get().is_some())
    }
}

#[cfg(feature = "grpc")]
impl<T> PerAuthority<T> {
    /// The state of `authority`'s server, made with `make` when it has none.
    ///
    /// When the map is full, the servers whose state no request holds are forgotten; when
    /// every one is held, the new server's state is made for this request alone, and not
    /// kept.
    pub(crate) fn get(&self, authority: Option<&Authority>, make: impl Fn() -> T) -> Arc<T> {
        let kept = self.with(
            authority,
            || Arc::new(make()),
            |state| Arc::strong_count(state) > 1,
            |state| state.cloned(),
        );
        kept.unwrap_or_else(|| Arc::new(make()))
    }
}

impl<K, V, S> fmt::Debug for PerKey<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerKey")
            .field("keys", &self.len())
            .field("limit", &self.limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, host: Option<&str>) -> request::Parts {
        let mut builder = http::Request::post(uri);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_authority_is_the_uri_s_then_the_host_header_s() {
        let of = |uri, host| authority_of(&head(uri, host)).map(|a| a.to_string());
        assert_eq!(
            of("http://a.example:50051/s/M", Some("b")),
            Some("a.example:50051".into())
        );
        assert_eq!(of("/s/M", Some("b.example")), Some("b.example".into()));
        assert_eq!(of("/s/M", None), None);
        assert_eq!(of("/s/M", Some("not a host")), None);
    }

    #[cfg(feature = "grpc")]
    #[test]
    fn one_state_per_server_the_host_in_any_case() {
        let map = PerAuthority::new();
        let a: Authority = "a.example:1".parse().unwrap();
        let upper: Authority = "A.EXAMPLE:1".parse().unwrap();
        let other_port: Authority = "a.example:2".parse().unwrap();
        let first = map.get(Some(&a), || 1);
        assert!(Arc::ptr_eq(&first, &map.get(Some(&upper), || 2)));
        assert_eq!(*map.get(Some(&other_port), || 3), 3);
        assert_eq!(*map.get(None, || 4), 4);
        assert_eq!(*map.get(None, || 5), 4);
        assert_eq!(map.len(), 3);
    }

    #[cfg(feature = "grpc")]
    #[test]
    fn a_full_map_forgets_the_servers_no_request_holds() {
        let map = PerAuthority::with_limit(2);
        let name = |n: u32| -> Authority { format!("s{n}.example").parse().unwrap() };
        let held = map.get(Some(&name(0)), || 0);
        drop(map.get(Some(&name(1)), || 1));
        // Full: server 1 is forgotten, server 2 kept in its place, server 0 is held and
        // kept.
        let two = map.get(Some(&name(2)), || 2);
        assert_eq!(*two, 2);
        assert!(Arc::ptr_eq(&two, &map.get(Some(&name(2)), || 9)));
        assert_eq!(map.len(), 2);
        assert!(Arc::ptr_eq(&held, &map.get(Some(&name(0)), || 9)));
        assert_eq!(*map.get(Some(&name(1)), || 1), 1, "made again");
        // Full of held servers: a new one gets a state of its own, not kept.
        let lone = map.get(Some(&name(3)), || 3);
        assert_eq!(*lone, 3);
        assert_eq!(map.len(), 2);
        assert_eq!(*map.get(Some(&name(3)), || 4), 4);
        assert_eq!(format!("{map:?}"), "PerKey { keys: 2, limit: 2 }");
    }
}
