//! The synchronisation types of the replay hand-off, the budget and the map of budgets:
//! std's, or loom's when the crate is built for model checking (`--cfg retryable_http_loom`),
//! as tokio does.

#[cfg(not(retryable_http_loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(not(retryable_http_loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, RwLock};

#[cfg(retryable_http_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(retryable_http_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard, RwLock};
