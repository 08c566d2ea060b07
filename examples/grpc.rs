//! A tonic client whose calls are retried by gRPC's own rules (gRFC A6), against a real
//! tonic server that fails.
//!
//! ```text
//! cargo run --example grpc --features grpc
//! ```
//!
//! The server, on a loopback port the OS picks, serves `echo.Echo/Say` and fails calls
//! from a script: UNAVAILABLE twice, a pushback, a status that is not retried, and a call
//! that fails until its deadline. The client is a tonic `Channel` wrapped in `GrpcLayer`
//! with a service config in gRPC's JSON form; it prints each call's timeline from the
//! record the layer keeps: every attempt, its gRPC status, and the wait before it.
//!
//! No protoc: messages are raw bytes, sent with a `Bytes` codec through tonic's
//! `client::Grpc`, as a generated client would send them.

#[path = "../tests/support/grpc.rs"]
mod echo;

use std::time::Duration;

use bytes::Bytes;
use retryable_http::Attempts;
use retryable_http::grpc::{self, GrpcLayer, ServiceConfig};
use retryable_http::record::Ended;
use tonic::{Request, Status};
use tower::Layer;

use echo::{Echo, SAY, unary};

/// What gRPC's clients would read from the service's DNS TXT record or xDS.
const SERVICE_CONFIG: &str = r#"{
  "methodConfig": [{
    "name": [{"service": "echo.Echo"}],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.1s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }],
  "retryThrottling": {"maxTokens": 100, "tokenRatio": 0.1}
}"#;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Calls are counted by the server from 0, retries included.
    let server = Echo::new(|n| match n {
        // "first": UNAVAILABLE twice, then OK.
        0 | 1 => Some(Status::unavailable("warming up")),
        // "pushback": UNAVAILABLE, and wait exactly 300 ms before trying again.
        3 => {
            let mut status = Status::unavailable("shedding load");
            let pushback = "300".parse().expect("a metadata value");
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", pushback);
            Some(status)
        }
        // "invalid": a status the config does not retry.
        5 => Some(Status::invalid_argument("no such thing")),
        // "deadline": fails until the call's 350 ms are up.
        6.. => Some(Status::unavailable("down")),
        _ => None,
    })
    .listen()
    .await;
    println!("tonic server on {}\n", server.addr);

    let config = ServiceConfig::from_json(SERVICE_CONFIG)?;
    let channel = GrpcLayer::new(config).layer(server.channel().await);
    let mut client = tonic::client::Grpc::new(channel);

    for (name, timeout) in [
        ("first", None),
        ("pushback", None),
        ("invalid", None),
        ("deadline", Some(Duration::from_millis(350))),
    ] {
        let mut request = Request::new(Bytes::from(name));
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        println!("Say({name:?})");
        match unary(&mut client, SAY, request).await {
            Ok(response) => {
                // A call that succeeded at once carries no record: one attempt, OK.
                match response.extensions().get::<Attempts>() {
                    Some(record) => print_record(record),
                    None => println!("  attempt 1  {:<32} OK", "at once"),
                }
                println!("  -> OK {:?}\n", response.get_ref());
            }
            Err(status) => {
                // The layer's give-ups carry the record; a status the server sent and the
                // layer returned as it was is one tonic made from the response.
                match grpc::attempts(&status) {
                    Some(record) => print_record(record),
                    None => println!("  attempt 1  {:<32} {}", "at once", name_of(&status)),
                }
                println!("  -> {}: {}\n", name_of(&status), status.message());
            }
        }
    }
    Ok(())
}

/// The name of a status's code, as a service config spells it.
fn name_of(status: &Status) -> &'static str {
    grpc::Code::from_i32(status.code() as i32).map_or("?", grpc::Code::as_str)
}

/// One line per attempt: how it ended, and the wait before it.
fn print_record(record: &Attempts) {
    for (i, attempt) in record.iter().enumerate() {
        let waited = match attempt.waited() {
            Some((wait, why)) => format!("after {wait:>9.3?} ({why})"),
            None => "at once".to_owned(),
        };
        let ended = match attempt.ended() {
            Ended::Grpc(code) => code.as_str().to_owned(),
            // The status followed in trailers: the call succeeded, so it was OK.
            Ended::Status(http::StatusCode::OK) => "OK".to_owned(),
            other => format!("{other:?}"),
        };
        println!("  attempt {}  {waited:<32} {ended}", i + 1);
    }
}
