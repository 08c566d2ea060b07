//! gRFC A6's parts, as the layer uses them: the service config, the metadata retries read
//! and write, the throttle, and a call's retry state. The public ones are
//! [`grpc`](crate::grpc)'s; the decisions are in `decide/grpc.rs`.

pub(crate) mod call;
mod config;
mod metadata;

pub use crate::budget::Throttle;
pub(crate) use call::{Call, Rules};
pub use config::{
    HedgingPolicy, MAX_ATTEMPTS, MethodConfig, Name, RetryPolicy, ServiceConfig, Throttling,
};
pub use metadata::{Outcome, Pushback, format_timeout, outcome, parse_timeout, pushback};
