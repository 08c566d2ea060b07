//! [`ServiceConfig`]: the retry and hedging parts of a gRPC service config, read from the
//! JSON that grpc-go, grpc-java and C-core accept, or built in Rust.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::grpc_code::Code;

/// The most attempts gRFC A6 allows: larger `maxAttempts` values are treated as 5.
pub const MAX_ATTEMPTS: u32 = 5;

/// The retry and hedging settings of a gRPC service config: per-method `retryPolicy`,
/// `hedgingPolicy` and `timeout`, and the channel's `retryThrottling`.
///
/// ```
/// use std::time::Duration;
/// use retryable_http::grpc::{Code, ServiceConfig};
///
/// let config = ServiceConfig::from_json(r#"{
///   "methodConfig": [{
///     "name": [{"service": "echo.Echo"}],
///     "timeout": "2.5s",
///     "retryPolicy": {
///       "maxAttempts": 4,
///       "initialBackoff": "0.1s",
///       "maxBackoff": "1s",
///       "backoffMultiplier": 2,
///       "retryableStatusCodes": ["UNAVAILABLE"]
///     }
///   }],
///   "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}
/// }"#)?;
/// let method = config.method("/echo.Echo/UnaryEcho").unwrap();
/// assert_eq!(method.timeout(), Some(Duration::from_millis(2500)));
/// let retry = method.retry_policy().unwrap();
/// assert_eq!(retry.max_attempts(), 4);
/// assert!(retry.is_retryable(Code::Unavailable));
/// assert!(config.method("/other.Service/Call").is_none());
/// # Ok::<(), retryable_http::error::ConfigError>(())
/// ```
///
/// # As gRPC's clients read it
///
/// - A method's config is the one whose `name` lists `{service, method}` for it, else the
///   one that lists `{service}`, else the one that lists `{}`; two configs may not list the
///   same name, and a `method` needs a `service`.
/// - `maxAttempts` must be at least 2; above 5 it counts as 5.
/// - Durations are proto3 JSON durations: seconds with up to nine decimals and an `s`
///   (`"0.1s"`, `".5s"`, `"3s"`).
/// - Status codes are names, in any case (`"UNAVAILABLE"`), or numbers.
/// - Field names match in any case, as grpc-go reads them (`"MaxAttempts"` too).
/// - A method config may set `retryPolicy` or `hedgingPolicy`, not both.
/// - Fields this crate does not use (`waitForReady`, `loadBalancingConfig`, ...) are
///   ignored; a field it uses with a bad value is an error that names the field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceConfig {
    methods: Vec<MethodConfig>,
    throttling: Option<Throttling>,
}

/// One entry of `methodConfig`: the methods it names and their settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodConfig {
    names: Vec<Name>,
    timeout: Option<Duration>,
    policy: Option<Policy>,
}

#[derive(Clone, Debug, PartialEq)]
enum Policy {
    Retry(RetryPolicy),
    Hedging(HedgingPolicy),
}

/// A method name in a method config: a service and a method, a whole service, or
/// everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    service: Option<String>,
    method: Option<String>,
}

/// gRFC A6's `retryPolicy`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    retryable: Codes,
}

/// gRFC A6's `hedgingPolicy`.
#[derive(Clone, Debug, PartialEq)]
pub struct HedgingPolicy {
    max_attempts: u32,
    delay: Duration,
    non_fatal: Codes,
}

/// gRFC A6's `retryThrottling`: the settings of one [`Throttle`](super::Throttle) per
/// server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throttling {
    max_tokens: u32,
    token_ratio: f64,
}

/// A set of status codes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Codes(u32);

impl Codes {
    fn contains(self, code: Code) -> bool {
        self.0 & (1 << code.as_i32()) != 0
    }

    fn insert(&mut self, code: Code) {
        self.0 |= 1 << code.as_i32();
    }
}

impl FromIterator<Code> for Codes {
    fn from_iter<I: IntoIterator<Item = Code>>(codes: I) -> Self {
        let mut set = Codes::default();
        for code in codes {
            set.insert(code);
        }
        set
    }
}

impl ServiceConfig {
    /// An empty config: no method is retried or hedged, and nothing is throttled.
    pub fn new() -> Self {
        ServiceConfig::default()
    }

    /// Reads a service config in gRPC's JSON form. Only `methodConfig` and
    /// `retryThrottling` are read.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| ConfigError::new(format!("service config is not JSON: {e}")))?;
        let root = object(&value, "service config")?;
        let mut config = ServiceConfig::new();
        if let Some(methods) = field(root, "methodConfig") {
            let methods = array(methods, "methodConfig")?;
            for (i, method) in methods.iter().enumerate() {
                let method = MethodConfig::from_json(method, &format!("methodConfig[{i}]"))?;
                config = config.with_method(method)?;
            }
        }
        if let Some(throttling) = field(root, "retryThrottling") {
            config.throttling = Some(Throttling::from_json(throttling)?);
        }
        Ok(config)
    }

    /// Adds a method config. An error if it names a method another config names already.
    pub fn with_method(mut self, method: MethodConfig) -> Result<Self, ConfigError> {
        for name in &method.names {
            if self.methods.iter().any(|m| m.names.contains(name)) {
                return Err(ConfigError::new(format!(
                    "methodConfig: {name} is named by two method configs"
                )));
            }
        }
        self.methods.push(method);
        Ok(self)
    }

    /// Sets the retry throttling.
    pub fn with_throttling(mut self, throttling: Throttling) -> Self {
        self.throttling = Some(throttling);
        self
    }

    /// The retry throttling, if the config sets it.
    pub fn throttling(&self) -> Option<Throttling> {
        self.throttling
    }

    /// The config of the method a request's path names (`/package.Service/Method`): the
    /// one naming the method, else the one naming its service, else the one naming `{}`.
    pub fn method(&self, path: &str) -> Option<&MethodConfig> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        // NOTE: compared in place: this runs for every call.
        let named = |service: Option<&str>, method: Option<&str>| {
            self.methods.iter().find(|m| {
                m.names.iter().any(|name| {
                    name.service.as_deref() == service && name.method.as_deref() == method
                })
            })
        };
        named(Some(service), Some(method))
            .or_else(|| named(Some(service), None))
            .or_else(|| named(None, None))
    }
}

impl MethodConfig {
    /// A method config for `names`, with no policy and no timeout.
    pub fn new(names: impl IntoIterator<Item = Name>) -> Self {
        MethodConfig {
            names: names.into_iter().collect(),
            ..MethodConfig::default()
        }
    }

    /// Retries the calls of these methods as `policy` says.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(Policy::Retry(policy));
        self
    }

    /// Hedges the calls of these methods as `policy` says.
    pub fn with_hedging(mut self, policy: HedgingPolicy) -> Self {
        self.policy = Some(Policy::Hedging(policy));
        self
    }

    /// Gives the calls of these methods a deadline of `timeout`, over all attempts.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        MethodConfig {
            timeout: Some(timeout),
            ..self
        }
    }

    /// The names this config applies to.
    pub fn names(&self) -> &[Name] {
        &self.names
    }

    /// The deadline of these methods' calls, over all attempts, if the config sets one.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The retry policy, if the config sets one.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        match &self.policy {
            Some(Policy::Retry(policy)) => Some(policy),
            _ => None,
        }
    }

    /// The hedging policy, if the config sets one.
    pub fn hedging_policy(&self) -> Option<&HedgingPolicy> {
        match &self.policy {
            Some(Policy::Hedging(policy)) => Some(policy),
            _ => None,
        }
    }

    fn from_json(value: &Value, at: &str) -> Result<Self, ConfigError> {
        let entry = object(value, at)?;
        let mut config = MethodConfig::default();
        if let Some(names) = field(entry, "name") {
            let at = format!("{at}.name");
            for (i, name) in array(names, &at)?.iter().enumerate() {
                let name = Name::from_json(name, &format!("{at}[{i}]"))?;
                if config.names.contains(&name) {
                    return Err(ConfigError::new(format!("{at}: {name} is listed twice")));
                }
                config.names.push(name);
            }
        }
        if let Some(timeout) = field(entry, "timeout") {
            config.timeout = Some(duration(timeout, &format!("{at}.timeout"))?);
        }
        let retry = field(entry, "retryPolicy");
        let hedging = field(entry, "hedgingPolicy");
        config.policy = match (retry, hedging) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(format!(
                    "{at}: retryPolicy and hedgingPolicy may not both be set"
                )));
            }
            (Some(retry), None) => Some(Policy::Retry(RetryPolicy::from_json(
                retry,
                &format!("{at}.retryPolicy"),
            )?)),
            (None, Some(hedging)) => Some(Policy::Hedging(HedgingPolicy::from_json(
                hedging,
                &format!("{at}.hedgingPolicy"),
            )?)),
            (None, None) => None,
        };
        Ok(config)
    }
}

impl Name {
    /// One method of one service: `Name::method("echo.Echo", "UnaryEcho")`.
    pub fn method(service: &str, method: &str) -> Self {
        Name {
            service: Some(service.to_owned()),
            method: Some(method.to_owned()),
        }
    }

    /// Every method of a service.
    pub fn service(service: &str) -> Self {
        Name {
            service: Some(service.to_owned()),
            method: None,
        }
    }

    /// Every method of every service: the default config.
    pub fn all() -> Self {
        Name {
            service: None,
            method: None,
        }
    }

    fn from_json(value: &Value, at: &str) -> Result<Self, ConfigError> {
        let name = object(value, at)?;
        let text = |key: &str| -> Result<Option<String>, ConfigError> {
            match field(name, key) {
                None => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ConfigError::new(format!("{at}.{key} must be a string"))),
            }
        };
        let (service, method) = (text("service")?, text("method")?);
        if service.is_none() && method.is_some() {
            return Err(ConfigError::new(format!(
                "{at}.method is set without a service"
            )));
        }
        Ok(Name { service, method })
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.service, &self.method) {
            (Some(service), Some(method)) => write!(f, "/{service}/{method}"),
            (Some(service), None) => write!(f, "/{service}/*"),
            _ => f.write_str("every method"),
        }
    }
}

impl RetryPolicy {
    /// A retry policy: at most `max_attempts` attempts (at least 2; more than 5 count as 5),
    /// waiting `min(initial_backoff × multiplier^(n−1), max_backoff)`, jittered by ±20 %,
    /// before retry `n`, for the statuses in `retryable`.
    pub fn new(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        multiplier: f64,
        retryable: impl IntoIterator<Item = Code>,
    ) -> Result<Self, ConfigError> {
        RetryPolicy::checked(
            max_attempts,
            initial_backoff,
            max_backoff,
            multiplier,
            retryable.into_iter().collect(),
            "retryPolicy",
        )
    }

    fn checked(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        multiplier: f64,
        retryable: Codes,
        at: &str,
    ) -> Result<Self, ConfigError> {
        let max_attempts = attempts(max_attempts, at)?;
        if initial_backoff.is_zero() {
            return Err(ConfigError::new(format!(
                "{at}.initialBackoff must be more than 0"
            )));
        }
        if max_backoff.is_zero() {
            return Err(ConfigError::new(format!(
                "{at}.maxBackoff must be more than 0"
            )));
        }
        if !multiplier.is_finite() || multiplier <= 0.0 {
            return Err(ConfigError::new(format!(
                "{at}.backoffMultiplier must be more than 0, not {multiplier}"
            )));
        }
        if retryable == Codes::default() {
            return Err(ConfigError::new(format!(
                "{at}.retryableStatusCodes must name at least one status"
            )));
        }
        Ok(RetryPolicy {
            max_attempts,
            initial_backoff,
            max_backoff,
            multiplier,
            retryable,
        })
    }

    fn from_json(value: &Value, at: &str) -> Result<Self, ConfigError> {
        let policy = object(value, at)?;
        let required = |key: &str| {
            field(policy, key).ok_or_else(|| ConfigError::new(format!("{at}.{key} is required")))
        };
        RetryPolicy::checked(
            integer(required("maxAttempts")?, &format!("{at}.maxAttempts"))?,
            duration(required("initialBackoff")?, &format!("{at}.initialBackoff"))?,
            duration(required("maxBackoff")?, &format!("{at}.maxBackoff"))?,
            number(
                required("backoffMultiplier")?,
                &format!("{at}.backoffMultiplier"),
            )?,
            codes(
                required("retryableStatusCodes")?,
                &format!("{at}.retryableStatusCodes"),
            )?,
            at,
        )
    }

    /// The most attempts a call makes, the first included: 2 to 5.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a call that ended with `code` may be retried.
    pub fn is_retryable(&self, code: Code) -> bool {
        self.retryable.contains(code)
    }

    /// The wait before retry `n` (from 1) without its jitter: `min(initial_backoff ×
    /// multiplier^(n−1), max_backoff)`. Each wait is this times a factor drawn uniformly
    /// from 0.8 to 1.2.
    pub fn backoff(&self, n: u32) -> Duration {
        let exponent = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        match Duration::try_from_secs_f64(secs) {
            Ok(wait) => wait.min(self.max_backoff),
            // Past what a duration holds, or NaN from 0 × ∞: the cap.
            Err(_) => self.max_backoff,
        }
    }
}

impl HedgingPolicy {
    /// A hedging policy: at most `max_attempts` attempts in flight over the call (at least
    /// 2; more than 5 count as 5), each started `delay` after the one before, and a
    /// response with a status in `non_fatal` starting the next one at once instead of
    /// ending the call.
    pub fn new(
        max_attempts: u32,
        delay: Duration,
        non_fatal: impl IntoIterator<Item = Code>,
    ) -> Result<Self, ConfigError> {
        Ok(HedgingPolicy {
            max_attempts: attempts(max_attempts, "hedgingPolicy")?,
            delay,
            non_fatal: non_fatal.into_iter().collect(),
        })
    }

    fn from_json(value: &Value, at: &str) -> Result<Self, ConfigError> {
        let policy = object(value, at)?;
        let max_attempts = field(policy, "maxAttempts")
            .ok_or_else(|| ConfigError::new(format!("{at}.maxAttempts is required")))?;
        Ok(HedgingPolicy {
            max_attempts: attempts(integer(max_attempts, &format!("{at}.maxAttempts"))?, at)?,
            delay: field(policy, "hedgingDelay")
                .map(|d| duration(d, &format!("{at}.hedgingDelay")))
                .transpose()?
                .unwrap_or_default(),
            non_fatal: field(policy, "nonFatalStatusCodes")
                .map(|c| codes(c, &format!("{at}.nonFatalStatusCodes")))
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// The most attempts a call makes, the first included: 2 to 5.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// How long after an attempt the next one starts.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Whether a response with `code` lets the other attempts go on and starts the next
    /// one at once; any other status ends the call.
    pub fn is_non_fatal(&self, code: Code) -> bool {
        self.non_fatal.contains(code)
    }
}

impl Throttling {
    /// Retry throttling with `max_tokens` (more than 0, at most 1000) and `token_ratio`
    /// (at least 0.001; only three decimals count).
    pub fn new(max_tokens: u32, token_ratio: f64) -> Result<Self, ConfigError> {
        crate::budget::throttle::milli(max_tokens, token_ratio)?;
        Ok(Throttling {
            max_tokens,
            token_ratio,
        })
    }

    /// A full bucket with these settings.
    pub fn throttle(&self) -> super::Throttle {
        super::Throttle::new(self.max_tokens, self.token_ratio)
            .expect("checked when the settings were made")
    }

    fn from_json(value: &Value) -> Result<Self, ConfigError> {
        let at = "retryThrottling";
        let throttling = object(value, at)?;
        let required = |key: &str| {
            field(throttling, key)
                .ok_or_else(|| ConfigError::new(format!("{at}.{key} is required")))
        };
        let max_tokens = integer(required("maxTokens")?, "retryThrottling.maxTokens")?;
        let token_ratio = number(required("tokenRatio")?, "retryThrottling.tokenRatio")?;
        Throttling::new(max_tokens, token_ratio)
    }
}

/// `max_attempts` checked and capped, for the policy at `at`.
fn attempts(max_attempts: u32, at: &str) -> Result<u32, ConfigError> {
    if max_attempts < 2 {
        return Err(ConfigError::new(format!(
            "{at}.maxAttempts must be at least 2, not {max_attempts}"
        )));
    }
    Ok(max_attempts.min(MAX_ATTEMPTS))
}

/// The value of `key` in `object`, matched in any case, as grpc-go matches field names.
fn field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    value
        .as_object()
        .ok_or_else(|| ConfigError::new(format!("{at} must be an object")))
}

fn array<'a>(value: &'a Value, at: &str) -> Result<&'a Vec<Value>, ConfigError> {
    value
        .as_array()
        .ok_or_else(|| ConfigError::new(format!("{at} must be a list")))
}

fn integer(value: &Value, at: &str) -> Result<u32, ConfigError> {
    let n = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            // `4.0` is an integer too, as in protobuf's JSON.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        // Protobuf's JSON also writes integers as strings.
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .ok_or_else(|| ConfigError::new(format!("{at} must be a whole number, not {value}")))
}

fn number(value: &Value, at: &str) -> Result<f64, ConfigError> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| ConfigError::new(format!("{at} must be a number, not {value}")))
}

/// A proto3 JSON duration: seconds with up to nine decimals, then `s`.
fn duration(value: &Value, at: &str) -> Result<Duration, ConfigError> {
    let bad = || {
        ConfigError::new(format!(
            "{at} must be a duration such as \"0.5s\", not {value}"
        ))
    };
    let text = value.as_str().ok_or_else(bad)?;
    let seconds = text.strip_suffix('s').ok_or_else(bad)?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 9
    {
        return Err(bad());
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let nanos = format!("{fraction:0<9}")
        .parse::<u32>()
        .map_err(|_| bad())?;
    Ok(Duration::new(secs, nanos))
}

/// A list of status codes, by name or by number.
fn codes(value: &Value, at: &str) -> Result<Codes, ConfigError> {
    let mut set = Codes::default();
    for (i, code) in array(value, at)?.iter().enumerate() {
        let parsed = match code {
            Value::String(name) => name.parse::<Code>().ok(),
            Value::Number(n) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .and_then(Code::from_i32),
            _ => None,
        };
        let code = parsed
            .ok_or_else(|| ConfigError::new(format!("{at}[{i}] is no gRPC status code: {code}")))?;
        set.insert(code);
    }
    Ok(set)
}

#[cfg(test)]
mod tests;
