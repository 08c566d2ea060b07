//! The chunks a replay body keeps, in the order they were read.

use bytes::Bytes;

/// An ordered list of refcounted chunks with their total length.
///
/// The first chunk is stored inline: most request bodies (`Full<Bytes>`, a serialized JSON
/// document) are a single chunk, and keeping one must not cost an allocation.
#[derive(Default)]
pub(super) struct Kept {
    first: Option<Bytes>,
    more: Vec<Bytes>,
    bytes: usize,
}

impl Kept {
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

    /// The number of bytes held.
    pub(super) fn len_bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn push(&mut self, chunk: Bytes) {
        self.bytes += chunk.len();
        match self.first {
            None => self.first = Some(chunk),
            Some(_) => self.more.push(chunk),
        }
    }

    /// A new reference to chunk `i`.
    pub(super) fn get(&self, i: usize) -> Bytes {
        self.slot(i).clone()
    }

    /// Chunk `i` itself, leaving an empty chunk in its place.
    pub(super) fn take(&mut self, i: usize) -> Bytes {
        let chunk = std::mem::take(self.slot_mut(i));
        self.bytes -= chunk.len();
        chunk
    }

    pub(super) fn clear(&mut self) {
        *self = Kept::default();
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
