//! Prints the retry layer's `tracing` events as a timeline: one line per attempt, with its
//! outcome and what the layer decided. Shared by the examples.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::StatusCode;

/// A `tracing` layer that prints the retry layer's events.
#[derive(Clone, Default)]
pub(crate) struct Timeline {
    start: Arc<Mutex<Option<Instant>>>,
}

impl Timeline {
    /// Starts the clock of the next request's timeline.
    pub(crate) fn restart(&self) {
        *self.start.lock().unwrap() = Some(Instant::now());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Timeline {
    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        metadata.target().starts_with("retryable_http")
    }

    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut f = Fields::default();
        event.record(&mut f);
        let at = self
            .start
            .lock()
            .unwrap()
            .map_or(0.0, |s| s.elapsed().as_secs_f64());
        let outcome = match (&f.0.get("status"), &f.0.get("error")) {
            (Some(code), _) => code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .map_or_else(|| code.to_string(), |s| s.to_string()),
            (None, Some(error)) => format!("error: {error}"),
            (None, None) => return,
        };
        let get = |k: &str| f.0.get(k).map(String::as_str).unwrap_or("?");
        let decision = match get("message") {
            "retrying" => format!(
                "retry in {} ({}; retries left: {})",
                get("wait"),
                match get("wait_from") {
                    "server" => "the server asked",
                    "policy" => "the policy asked",
                    _ => "backoff",
                },
                get("retries_left"),
            ),
            "not retrying" => format!("stop: {}", get("reason")),
            "done" => "done".to_owned(),
            _ => return,
        };
        let head = format!("  {at:6.3} s  attempt {} -> {outcome}", get("attempt"));
        if outcome.len() <= 28 {
            println!("{head:<55} {decision}");
        } else {
            println!("{head}\n{:<55} {decision}", "");
        }
    }
}

/// An event's fields as text.
#[derive(Default)]
struct Fields(HashMap<&'static str, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl Timeline {
    /// Installs the timeline as the global `tracing` subscriber.
    pub(crate) fn install() -> Result<Self, tracing::subscriber::SetGlobalDefaultError> {
        use tracing_subscriber::layer::SubscriberExt;
        let timeline = Timeline::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(timeline.clone()),
        )?;
        Ok(timeline)
    }
}
