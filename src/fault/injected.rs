//! How a fault marks what it made: a response extension, and the cause of the errors it
//! injects.

use std::fmt;
use std::sync::Arc;

/// A response extension on every response a fault made (by [`Effect::Respond`](super::Effect::Respond) or
/// [`Effect::Replace`](super::Effect::Replace)), naming the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected {
    pub(super) rule: Arc<str>,
}

impl Injected {
    /// The rule's name, or its position (`"0"` for the first rule).
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// The cause of the `io::Error` an [`Effect::Fail`](super::Effect::Fail) fault returns.
#[derive(Debug)]
pub struct InjectedFault;

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("injected fault")
    }
}

impl std::error::Error for InjectedFault {}
