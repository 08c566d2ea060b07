//! [`PerAuthority`]: state kept per server, keyed by the authority a request goes to.
//!
//! gRPC's retry throttle is one bucket per server name, so that one server's failures do
//! not stop the retries to another. The map is bounded: past [`PerAuthority::LIMIT`]
//! servers, the ones no request holds are forgotten first.

#![cfg_attr(not(feature = "grpc"), allow(dead_code))]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use http::request;
use http::uri::Authority;

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

/// One `T` per server, made on first use and shared by every request to that server.
/// Authorities compare as URIs do: the host in any case, and the port.
pub(crate) struct PerAuthority<T> {
    entries: RwLock<HashMap<Authority, Arc<T>>>,
    /// The state of requests with no authority, kept apart: a tonic channel's, found
    /// without hashing or locking.
    unnamed: OnceLock<Arc<T>>,
    limit: usize,
}

impl<T> PerAuthority<T> {
    /// The most servers kept at once: 1024.
    pub(crate) const LIMIT: usize = 1024;

    pub(crate) fn new() -> Self {
        PerAuthority::with_limit(Self::LIMIT)
    }

    pub(crate) fn with_limit(limit: usize) -> Self {
        PerAuthority {
            entries: RwLock::new(HashMap::new()),
            unnamed: OnceLock::new(),
            limit,
        }
    }

    /// The state of `authority`'s server, made with `make` when it has none.
    ///
    /// When the map is full, the servers whose state no request holds are forgotten; when
    /// every one is held, the new server's state is made for this request alone, and not
    /// kept.
    pub(crate) fn get(&self, authority: Option<&Authority>, make: impl FnOnce() -> T) -> Arc<T> {
        let Some(authority) = authority else {
            return self.unnamed.get_or_init(|| Arc::new(make())).clone();
        };
        {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(found) = entries.get(authority) {
                return found.clone();
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = entries.get(authority) {
            return found.clone();
        }
        if entries.len() >= self.limit {
            entries.retain(|_, state| Arc::strong_count(state) > 1);
        }
        let state = Arc::new(make());
        if entries.len() < self.limit {
            entries.insert(authority.clone(), state.clone());
        }
        state
    }

    /// How many servers are kept.
    pub(crate) fn len(&self) -> usize {
        let named = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        named + usize::from(self.unnamed.get().is_some())
    }
}

impl<T> fmt::Debug for PerAuthority<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerAuthority")
            .field("servers", &self.len())
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
        assert_eq!(format!("{map:?}"), "PerAuthority { servers: 2, limit: 2 }");
    }
}
