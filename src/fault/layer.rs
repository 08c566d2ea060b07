//! [`FaultLayer`]: the rules, and the tower layer that applies them.

use std::sync::Arc;

use tokio::time::Instant;
use tower_layer::Layer;

use super::record::FaultLog;
use super::rule::Rule;
use super::service::{Fault, Shared};

/// A tower [`Layer`] that injects faults into an HTTP service. See the
/// [module documentation](crate::fault).
///
/// # Clone
///
/// Clones, and the services they make, share the rules' counters and the record.
#[derive(Clone, Debug)]
pub struct FaultLayer {
    rules: Vec<Rule>,
    log: FaultLog,
    started: Instant,
}

impl FaultLayer {
    /// A layer with no rules: it forwards everything and records it.
    pub fn new() -> Self {
        FaultLayer {
            rules: Vec::new(),
            log: FaultLog::default(),
            started: Instant::now(),
        }
    }

    /// Adds a rule; rules are tried in the order they were added. A rule without a
    /// [name](Rule::named) is named by its position (`"0"` for the first).
    pub fn rule(mut self, mut rule: Rule) -> Self {
        let position = self.rules.len();
        rule.name.get_or_insert_with(|| position.to_string().into());
        self.rules.push(rule);
        self
    }

    /// The record of every request the layer's services saw.
    pub fn log(&self) -> FaultLog {
        self.log.clone()
    }
}

impl Default for FaultLayer {
    fn default() -> Self {
        FaultLayer::new()
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = Fault<S>;

    fn layer(&self, inner: S) -> Fault<S> {
        Fault::new(
            inner,
            Arc::new(Shared {
                // NOTE: a rule's counters and generator are behind `Arc`s, so these copies
                // share them with the layer and its other services.
                rules: self.rules.clone(),
                log: self.log.clone(),
                started: self.started,
            }),
        )
    }
}
