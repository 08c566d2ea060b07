//! The chunks a replay body keeps, in the order they were read, and the memory they hold.

use std::sync::Arc;

use bytes::Bytes;

use crate::sync::{AtomicUsize, Ordering};

/// A cap on the replay bytes held by all the in-flight requests of a layer.
#[derive(Debug)]
pub(crate) struct Memory {
    held: AtomicUsize,
    limit: usize,
}

impl Memory {
    pub(crate) fn new(limit: usize) -> Self {
        Memory {
            held: AtomicUsize::new(0),
            limit,
        }
    }

    /// The bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    fn reserve(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// An ordered list of refcounted chunks with their total length.
///
/// The first chunk is stored inline: most request bodies (`Full<Bytes>`, a serialized JSON
/// document) are a single chunk, and keeping one must not cost an allocation.
pub(super) struct Kept {
    first: Option<Bytes>,
    more: Vec<Bytes>,
    bytes: usize,
    /// The layer-wide cap the bytes are counted against, if there is one.
    memory: Option<Arc<Memory>>,
}

impl Kept {
    pub(super) fn new(memory: Option<Arc<Memory>>) -> Self {
        Kept {
            first: None,
            more: Vec::new(),
            bytes: 0,
            memory,
        }
    }

    /// The number of chunks.
    pub(super) fn len(&self) -> usize {
        match self.first {
            Some(_) => 1 + self.more.len(),
            None => 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Keeps `chunk` if the request stays within `cap` bytes and the layer within its
    /// memory cap. Returns whether it was kept.
    pub(super) fn push(&mut self, chunk: Bytes, cap: usize) -> bool {
        let len = chunk.len();
        if self.bytes + len > cap {
            return false;
        }
        if let Some(memory) = &self.memory {
            if !memory.reserve(len) {
                return false;
            }
        }
        self.bytes += len;
        match self.first {
            None => self.first = Some(chunk),
            Some(_) => self.more.push(chunk),
        }
        true
    }

    /// A new reference to chunk `i`.
    pub(super) fn get(&self, i: usize) -> Bytes {
        self.slot(i).clone()
    }

    /// New references to every chunk, in order.
    pub(super) fn to_vec(&self) -> Vec<Bytes> {
        self.first.iter().chain(&self.more).cloned().collect()
    }

    /// Chunk `i` itself, leaving an empty chunk in its place.
    pub(super) fn take(&mut self, i: usize) -> Bytes {
        let chunk = std::mem::take(self.slot_mut(i));
        self.forget(chunk.len());
        chunk
    }

    /// Drops every chunk.
    pub(super) fn clear(&mut self) {
        self.first = None;
        self.more = Vec::new();
        self.forget(self.bytes);
    }

    fn forget(&mut self, bytes: usize) {
        self.bytes -= bytes;
        if let Some(memory) = &self.memory {
            memory.release(bytes);
        }
    }

    fn slot(&self, i: usize) -> &Bytes {
        match (i, &self.first) {
            (0, Some(first)) => first,
            _ => &self.more[i - 1],
        }
    }

    fn slot_mut(&mut self, i: usize) -> &mut Bytes {
        match (i, &mut self.first) {
            (0, Some(first)) => first,
            _ => &mut self.more[i - 1],
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.forget(self.bytes);
    }
}
