//! How many attempts a response took.

/// A response extension: how many attempts the layer made for this response, counting the
/// one that produced it (1 when the first attempt was answered).
///
/// ```
/// # use retryable_http::Attempts;
/// # let response = http::Response::new(());
/// # let mut response = response;
/// # response.extensions_mut().insert(Attempts::new(3));
/// let attempts = response.extensions().get::<Attempts>().map(|a| a.attempts());
/// assert_eq!(attempts, Some(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attempts(u32);

impl Attempts {
    /// `n` attempts.
    pub fn new(n: u32) -> Self {
        Attempts(n)
    }

    /// How many attempts were made, the one that produced the response included.
    pub fn attempts(self) -> u32 {
        self.0
    }
}
