//! [`Session`]: one request and its retries — tower's "request session" — as the response
//! future sees it.
//!
//! The future holds the states and the timer; the session holds everything else and answers
//! each state's one question with the transition that follows: after an attempt, return or
//! retry ([`Next`]); once the earlier bodies are released, return, drain or go on
//! ([`Released`]); then wait, make the body again, or get ready ([`Step`]). Sequential and
//! hedged attempts share its one way to judge an outcome, to make the next request, and to
//! give the caller what it gets.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response, request, response};
use http_body::Body;
use tokio::time::Instant;

use crate::body::{Memory, Reopen, Replay, ReplayBody, Source, Unavailable};
use crate::budget::Spend;
use crate::classify::{classify, is_unprocessed};
use crate::config::{Config, Setup, after};
use crate::decide::{Decision, History, Now, decide, log};
use crate::error::{BoxError, DeadlineExceeded, Error, Report};
use crate::overrides::RetryOverride;
use crate::policy::{Attempt, Outcome, Policy, StopReason};
use crate::record::{Attempts, Ended, Ending, Recorder, WaitReason};
use crate::rng::{Rng, Seeds};
use crate::telemetry::{AttemptInfo, AttemptTrace, Telemetry};

/// What follows an attempt's outcome.
pub(crate) enum Next<R> {
    /// It goes to the caller.
    Return(Result<Response<R>, Error>),
    /// It is retried; the outcome is kept until the earlier bodies are released.
    Retry(Result<Response<R>, BoxError>),
}

/// What follows once the earlier attempts' bodies are released, or the wait for them ended.
pub(crate) enum Released<R> {
    /// The outcome goes to the caller after all: the body cannot be had again.
    Return(Result<Response<R>, Error>),
    /// Read a little of this response, so that its connection can be reused, then go on.
    Drain(R),
    /// Go on to the next attempt.
    Proceed,
}

/// What comes before the next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Wait until then.
    Wait(Instant),
    /// Make the body again with the request's `Reopen`.
    Reopen,
    /// Drive the service to readiness, then send.
    Ready,
}

/// One request and its retries.
pub(crate) struct Session<S, B> {
    /// The layer's configuration, and the service retries are made from.
    setup: Arc<Setup<S>>,
    /// The request's own settings, resolved against the layer's, when it has a
    /// [`RetryOverride`]; the layer's settings apply otherwise. Boxed: most requests have
    /// none, and the future stays small.
    own: Option<Box<Own>>,
    /// The caller's request head: every attempt starts from a copy of it.
    head: request::Parts,
    body: Source<B>,
    /// The attempts made, the one in flight included.
    attempts: u32,
    started: Instant,
    /// What only a request that is retried or hedged needs; made on its first retry, so
    /// that the future of a request that succeeds at once stays small.
    retry: Option<Box<Retrying<S>>>,
    /// The request's spans and the attempts' timing, when anything wants them.
    telemetry: Telemetry,
}

/// A request's own settings: its [`RetryOverride`], with what it leaves unset taken from
/// the layer.
struct Own {
    max_retries: u32,
    attempt_timeout: Option<Duration>,
    deadline: Option<Duration>,
    policy: Option<Arc<dyn Policy>>,
    /// The gRPC call this request is, when the layer applies gRPC's rules to it.
    #[cfg(feature = "grpc")]
    grpc: Option<crate::a6::Call>,
    /// The connection of the attempt in flight, when the layer does not let a retry reuse
    /// a failed attempt's connection (see [`RetryLayer::reconnect_on_retry`]).
    ///
    /// [`RetryLayer::reconnect_on_retry`]: crate::RetryLayer::reconnect_on_retry
    #[cfg(feature = "hyper")]
    connection: Option<hyper_util::client::legacy::connect::CaptureConnection>,
}

impl Own {
    /// The layer's settings.
    #[cfg(any(feature = "grpc", feature = "hyper"))]
    fn of(config: &Config) -> Box<Own> {
        Box::new(Own {
            max_retries: config.max_retries,
            attempt_timeout: config.attempt_timeout,
            deadline: config.deadline,
            policy: None,
            #[cfg(feature = "grpc")]
            grpc: None,
            #[cfg(feature = "hyper")]
            connection: None,
        })
    }
}

/// The state of a request that is being retried or hedged.
struct Retrying<S> {
    /// The service every attempt after the first goes out on: a clone of the one the layer
    /// wrapped, made when the first of them gets ready.
    service: Option<S>,
    /// When the next attempt may start.
    at: Instant,
    /// The outcome being retried, for the prepare-retry hook: its head, or its error.
    last: Option<Result<response::Parts, BoxError>>,
    /// What happened so far; on the success path the record is made when it is given.
    record: Recorder,
    /// The jitter's generator, made when a backoff first needs it.
    rng: Option<Rng>,
}

impl<S, B> Session<S, B> {
    /// The session of a request that starts now, and the body of its first attempt, which
    /// `body` makes with the replay cap and the memory it may keep. The request's
    /// [`RetryOverride`] is resolved here, once.
    #[inline(always)]
    pub(crate) fn start(
        setup: Arc<Setup<S>>,
        mut head: request::Parts,
        body: impl FnOnce(Option<usize>, Option<&Arc<Memory>>) -> (ReplayBody<B>, Replay<B>),
    ) -> (Self, ReplayBody<B>)
    where
        B: 'static,
    {
        let config = &*setup.config;
        let now = Instant::now();
        // NOTE: most requests carry no extension at all; looking one up costs more than
        // asking that. The override is resolved into a box at once, so that what a request
        // without one moves around is a null pointer.
        let (reopen, own) = if head.extensions.is_empty() {
            (None, None)
        } else {
            let reopen = head.extensions.remove::<Reopen<B>>();
            let own = head.extensions.remove::<RetryOverride>().map(|o| {
                Box::new(Own {
                    max_retries: o.max_retries.unwrap_or(config.max_retries),
                    attempt_timeout: o.attempt_timeout.or(config.attempt_timeout),
                    deadline: o.deadline.or(config.deadline),
                    policy: o.policy,
                    #[cfg(feature = "grpc")]
                    grpc: None,
                    #[cfg(feature = "hyper")]
                    connection: None,
                })
            });
            (reopen, own)
        };
        #[cfg(feature = "grpc")]
        let own = grpc_call(config, &head, own);
        // The attempts' connections are captured in the request's own settings.
        #[cfg(feature = "hyper")]
        let own = match (own, config.reconnect) {
            (None, true) => Some(Own::of(config)),
            (own, _) => own,
        };
        // A gRPC call's retries are throttled, not paid from the budget.
        #[cfg(feature = "grpc")]
        let budgeted = own.as_ref().is_none_or(|o| o.grpc.is_none());
        #[cfg(not(feature = "grpc"))]
        let budgeted = true;
        if budgeted {
            if let Some(budget) = &config.budget {
                budget.deposit(&head, now);
            }
            if let Some(cap) = &config.budget_cap {
                cap.deposit_at(now);
            }
        }
        let max_retries = max_retries_of(config, &own);
        // With no retry to come, nothing is kept.
        let cap = (max_retries > 0).then_some(config.replay_limit);
        let (first, replay) = body(cap, config.memory.as_ref());
        let telemetry = Telemetry::start(&head, config.metrics());
        let session = Session {
            setup,
            own,
            head,
            body: Source::new(replay, reopen),
            attempts: 1,
            started: now,
            retry: None,
            telemetry,
        };
        (session, first)
    }

    /// The layer's configuration.
    pub(crate) fn config(&self) -> &Config {
        &self.setup.config
    }

    /// The service the attempts after the first go out on, made on first use.
    pub(crate) fn service(&mut self) -> &mut S
    where
        S: Clone,
    {
        let started = self.started;
        let retry = self.retry.get_or_insert_with(|| Retrying::new(started));
        retry.service.get_or_insert_with(|| self.setup.service())
    }

    /// The number of the attempt in flight or last made, from 1.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The retries this request may make.
    pub(crate) fn max_retries(&self) -> u32 {
        max_retries_of(self.config(), &self.own)
    }

    /// This request's attempt timeout, if it has one.
    pub(crate) fn attempt_timeout(&self) -> Option<Duration> {
        self.own
            .as_ref()
            .map_or(self.config().attempt_timeout, |o| o.attempt_timeout)
    }

    /// The caller's request head.
    pub(crate) fn head(&self) -> &request::Parts {
        &self.head
    }

    /// When the request started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// The policy of this request: its own, or the layer's.
    fn policy(&self) -> &dyn Policy {
        policy_of(self.config(), &self.own)
    }

    /// The request's spans and the attempts' timing.
    pub(crate) fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Makes `trace` the sequential attempt in flight.
    pub(crate) fn set_current(&mut self, trace: AttemptTrace) {
        self.telemetry.set_current(trace);
    }

    /// The request of attempt `info`: a copy of the caller's head, with `body`, and the
    /// attempt's span. Runs the attempt hook.
    #[inline(always)]
    pub(crate) fn attempt_request(
        &mut self,
        info: AttemptInfo,
        body: ReplayBody<B>,
    ) -> (Request<ReplayBody<B>>, AttemptTrace) {
        let number = info.number();
        self.attempts = number;
        let mut head = self.head.clone();
        // The first attempt carries nothing: `AttemptInfo::of` says what it is.
        if number > 1 {
            head.extensions.insert(info);
        }
        if let Some(name) = &self.config().attempt_header {
            head.headers.insert(name.clone(), HeaderValue::from(number));
        }
        #[cfg(feature = "hyper")]
        if self.config().reconnect {
            if let Some(own) = self.own.as_mut() {
                own.connection = Some(capture(&mut head));
            }
        }
        #[cfg(feature = "grpc")]
        if let Some(call) = self.grpc() {
            // The time left: all of it for the first attempt, whose `grpc-timeout` is left
            // as the caller sent it when that is the call's deadline.
            let left = match self.time_allowed() {
                Some(allowed) if number == 1 && call.sent() == Some(allowed) => None,
                Some(allowed) if number == 1 => Some(allowed),
                Some(_) => self
                    .deadline()
                    .map(|d| d.saturating_duration_since(Instant::now())),
                None => None,
            };
            call.stamp(&mut head, number, left);
        }
        if let Some(hook) = &self.config().hooks.on_attempt {
            hook(&Attempt::started_at(&head, None, number, self.started));
        }
        let trace = self.telemetry.open(&head, &info);
        (Request::from_parts(head, body), trace)
    }

    /// When an attempt started at `now` must end, if ever: its timeout or the deadline.
    pub(crate) fn attempt_ends(&self, now: Instant) -> Option<Instant> {
        let timeout = self.attempt_timeout().map(|t| after(now, t));
        match (timeout, self.deadline()) {
            (Some(t), Some(d)) => Some(t.min(d)),
            (t, d) => t.or(d),
        }
    }

    /// When the whole request must be done by, if it has a deadline.
    // NOTE: computed when asked rather than kept: most requests have none, and every byte
    // of the session is moved with the future.
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.time_allowed().map(|d| after(self.started, d))
    }

    /// How long the whole request may take, if it has a deadline: its own, or the layer's.
    #[inline]
    fn time_allowed(&self) -> Option<Duration> {
        self.own
            .as_ref()
            .map_or(self.config().deadline, |o| o.deadline)
    }

    /// Whether the request has a deadline or an attempt timeout: whether an attempt in
    /// flight can be cut off.
    #[inline]
    pub(crate) fn is_timed(&self) -> bool {
        self.time_allowed().is_some() || self.attempt_timeout().is_some()
    }

    /// Whether the deadline has passed at `now`.
    pub(crate) fn past_deadline(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    /// Judges the outcome of attempt `number`: runs the response hook, and decides what
    /// follows it when `attempts` attempts of at most `max_retries + 1` were made.
    /// `hedging` when other attempts may be in flight. Nothing is paid or recorded here.
    #[inline]
    pub(crate) fn judge(
        &mut self,
        number: u32,
        attempts: u32,
        max_retries: u32,
        hedging: bool,
        outcome: Outcome<'_>,
        now: &mut Now,
    ) -> Decision {
        if let (Some(hook), Outcome::Response(_)) = (&self.config().hooks.on_response, outcome) {
            hook(&Attempt::started_at(
                &self.head,
                Some(outcome),
                number,
                self.started,
            ));
        }
        let history = History {
            attempts,
            max_retries,
            started: self.started,
            deadline: self.deadline(),
            previous_wait: self
                .retry
                .as_ref()
                .and_then(|r| r.record.last_wait())
                .map_or(Duration::ZERO, |(wait, _)| wait),
            body: self.body.state(),
            hedging,
        };
        // The generator lives with what only a retried request keeps.
        let mut rng = self.retry.as_mut().and_then(|r| r.rng.take());
        if rng.is_none() {
            // Drawn now, in the order requests come to their first decision, so that a run
            // on one thread repeats exactly.
            rng = self.setup.config.jitter_seed.as_deref().map(Seeds::next);
        }
        #[cfg(feature = "grpc")]
        let grpc = self.own.as_mut().and_then(|o| o.grpc.as_mut());
        #[cfg(not(feature = "grpc"))]
        let grpc: Option<std::convert::Infallible> = None;
        let decision = match grpc {
            #[cfg(feature = "grpc")]
            Some(call) if hedging => {
                call.decide_hedged(outcome, self.setup.config.server_waits.max_wait())
            }
            #[cfg(feature = "grpc")]
            Some(call) => call.decide(
                outcome,
                history.body,
                self.setup.config.server_waits.max_wait(),
                history.deadline,
                now,
                &mut rng,
            ),
            #[cfg(not(feature = "grpc"))]
            Some(never) => match never {},
            None => decide(
                self.config(),
                policy_of(self.config(), &self.own),
                &self.head,
                outcome,
                &history,
                now,
                &mut rng,
            ),
        };
        if rng.is_some() {
            self.retrying().rng = rng;
        }
        log(number, max_retries, outcome, &decision);
        decision
    }

    /// What follows the outcome of the attempt in flight: a retry is paid from the budget
    /// here, the one side effect of deciding to retry.
    #[inline(always)]
    pub(crate) fn after_attempt<R>(&mut self, outcome: Result<Response<R>, BoxError>) -> Next<R> {
        match outcome {
            Ok(response) => {
                let (head, body) = response.into_parts();
                let decision = self.decide(Outcome::Response(&head));
                let response = Response::from_parts(head, body);
                match decision {
                    Decision::Retry { .. } => Next::Retry(Ok(response)),
                    // The common case, kept inline: the first answer is the caller's, no hook
                    // runs and the record is what the response says (see `give_back`).
                    Decision::Stop(StopReason::Policy) if self.retry.is_none() => {
                        self.body.finish();
                        Next::Return(Ok(response))
                    }
                    Decision::Stop(reason) => Next::Return(self.give_back(Ok(response), reason)),
                }
            }
            Err(error) => match self.decide(Outcome::Error(&*error)) {
                Decision::Retry { .. } => Next::Retry(Err(error)),
                Decision::Stop(reason) => Next::Return(self.give_back(Err(error), reason)),
            },
        }
    }

    /// The decision after the attempt in flight, paid from the budget when it is a retry,
    /// and noted in the record.
    fn decide(&mut self, outcome: Outcome<'_>) -> Decision {
        // NOTE: the clock is read only for a retry: a request that succeeds reads it once,
        // when it starts.
        let mut now = Now::lazy();
        let (number, max) = (self.attempts, self.max_retries());
        let mut decision = if self.accepts_at_once(outcome) {
            let decision = Decision::Stop(StopReason::Policy);
            log(number, max, outcome, &decision);
            decision
        } else {
            self.judge(number, number, max, false, outcome, &mut now)
        };
        if let Decision::Retry { wait, why } = decision {
            let now = now.get();
            // The last check: a retry that will happen is the only one paid for.
            // A retry of a request the server never processed is no sign that it fails.
            let spend = match outcome {
                Outcome::Error(error) if is_unprocessed(error) => Spend::Unprocessed,
                _ => Spend::Retry,
            };
            if !self.pay_for_attempt(now, spend) {
                decision = Decision::Stop(StopReason::Budget);
            } else {
                self.drop_connection();
                let retry = self.retrying();
                retry.record.ended(ended(outcome), Some((wait, why)));
                retry.at = after(now, wait);
            }
        }
        if let (Decision::Stop(_), Some(retry)) = (decision, self.retry.as_mut()) {
            retry.record.ended(ended(outcome), None);
        }
        if let Some(trace) = self.telemetry.take_current() {
            self.attempt_ended(trace, outcome, &decision);
        }
        decision
    }

    /// The attempt `trace` ended with `outcome`, and `decision` follows.
    #[inline(never)]
    pub(crate) fn attempt_ended(
        &self,
        trace: AttemptTrace,
        outcome: Outcome<'_>,
        decision: &Decision,
    ) {
        let metrics = self.setup.config.metrics();
        trace.ended(&self.head, outcome, decision.name(), metrics);
    }

    /// Lets no later request reuse the connection of the attempt just decided against,
    /// when the layer says so: the retry then goes out on a new one.
    fn drop_connection(&mut self) {
        #[cfg(feature = "hyper")]
        if let Some(captured) = self.own.as_mut().and_then(|o| o.connection.take()) {
            if let Some(connection) = captured.connection_metadata().as_ref() {
                tracing::trace!(attempt = self.attempts, "not reusing the connection");
                connection.poison();
            }
        }
    }

    /// Whether `outcome` goes to the caller whatever else is known: a 2xx response under a
    /// policy that [stops on every success](Policy::stops_on_success), with no response hook
    /// to run. [`decide`](crate::decide::decide) would say so too; this says it without
    /// building what a policy sees.
    /// For a gRPC call: an OK or committed response, which is a success for the throttle.
    #[inline]
    fn accepts_at_once(&self, outcome: Outcome<'_>) -> bool {
        let Outcome::Response(head) = outcome else {
            return false;
        };
        #[cfg(feature = "grpc")]
        if let Some(call) = self.grpc() {
            return self.config().hooks.on_response.is_none() && call.accepts_at_once(head);
        }
        head.status.is_success()
            && self.config().hooks.on_response.is_none()
            && self.policy().stops_on_success()
    }

    /// Pays for an attempt after the first, for `spend`, from the budget; `false` when it
    /// refuses. A gRPC call pays nothing: its throttle takes the place of the budget.
    pub(crate) fn pay_for_attempt(&self, now: Instant, spend: Spend) -> bool {
        #[cfg(feature = "grpc")]
        if let Some(call) = self.grpc() {
            return call.allows_another();
        }
        self.config().pay(&self.head, now, spend)
    }

    /// The gRPC call this request is, when the layer applies gRPC's rules to it.
    #[cfg(feature = "grpc")]
    #[inline]
    fn grpc(&self) -> Option<&crate::a6::Call> {
        self.own.as_ref().and_then(|o| o.grpc.as_ref())
    }

    /// Whether the layer applies gRPC's rules to this request.
    #[inline]
    fn is_grpc(&self) -> bool {
        #[cfg(feature = "grpc")]
        return self.grpc().is_some();
        #[cfg(not(feature = "grpc"))]
        false
    }

    /// Ready once the earlier attempts' bodies are out of the way of the next one.
    pub(crate) fn poll_released(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.body.poll_released(cx)
    }

    /// What follows the outcome being retried, once the earlier bodies were handed back
    /// (`released`) or the wait for them ended.
    pub(crate) fn released<R: Body>(
        &mut self,
        released: bool,
        outcome: Result<Response<R>, BoxError>,
    ) -> Released<R> {
        if let Err(unavailable) = self.body.settle(released) {
            let reason = match unavailable {
                // The body outgrew the cap while the attempt still sent it.
                Unavailable::NotReplayable => StopReason::BodyNotReplayable,
                // It was not handed back in time.
                Unavailable::InUse => StopReason::BodyInUse,
            };
            tracing::debug!(attempt = self.attempts, reason = %reason, "not retrying");
            return Released::Return(self.give_back(outcome, reason));
        }
        // The outcome is kept for the prepare-retry hook; its body, if any, is drained.
        let (kept, body) = match outcome {
            Ok(response) => {
                let (head, body) = response.into_parts();
                (Ok(head), Some(body))
            }
            Err(error) => (Err(error), None),
        };
        self.retrying().last = Some(kept);
        match body {
            Some(body) if self.config().drain_limit > 0 && !body.is_end_stream() => {
                Released::Drain(body)
            }
            _ => Released::Proceed,
        }
    }

    /// What comes before the next attempt, at `now`: the rest of the wait, making the body
    /// again, or readiness.
    pub(crate) fn step(&mut self, now: Instant) -> Step {
        let at = self.retry.as_ref().map_or(now, |r| r.at);
        if at > now {
            return Step::Wait(at);
        }
        self.after_wait()
    }

    /// What comes before the next attempt once its time has come: making the body again,
    /// or readiness.
    pub(crate) fn after_wait(&mut self) -> Step {
        if self.body.start_reopening() {
            tracing::trace!(attempt = self.attempts + 1, "reopening the body");
            Step::Reopen
        } else {
            Step::Ready
        }
    }

    /// Polls the body being made again; ready with the error that ends the request if it
    /// could not be.
    pub(crate) fn poll_reopened(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let made = std::task::ready!(self.body.poll_reopened(cx));
        Poll::Ready(made.map_err(|error| {
            tracing::debug!(attempt = self.attempts, error = %Report::new(&*error), "reopening the body failed");
            let record = self.record(Ended::Abandoned, None);
            Error::reopen(&self.head.method, &self.head.uri, self.attempts, error)
                .with_record(record)
        }))
    }

    /// The request of the next attempt, after the prepare-retry hook ran on the outcome
    /// being retried.
    pub(crate) fn next_request(&mut self) -> Result<(Request<ReplayBody<B>>, AttemptTrace), Error> {
        // The outcome is needed no longer than the hook: the next one replaces it.
        let last = self.retry.as_mut().and_then(|r| r.last.take());
        // A retry of an outcome that proves the server never processed the request.
        let unprocessed = matches!(&last, Some(Err(error)) if is_unprocessed(&**error));
        if let Some(last) = last {
            self.prepare(Outcome::of(last.as_ref()))?;
        }
        let number = self.attempts.saturating_add(1);
        // No attempt follows the last one: its body need not keep anything.
        let body = self.body.next_body(number > self.max_retries());
        tracing::trace!(attempt = number, "sending");
        let waited = self.retry.as_ref().and_then(|r| r.record.last_wait());
        let transparent = unprocessed || waited.is_some_and(|(_, why)| why.is_transparent());
        let info = AttemptInfo::retry(number, waited).transparent(transparent);
        Ok(self.attempt_request(info, body))
    }

    /// Runs the prepare-retry hook before an attempt that follows `last`, an outcome that is
    /// retried; the hook changes the head that attempt and every later one start from.
    pub(crate) fn prepare(&mut self, last: Outcome<'_>) -> Result<(), Error> {
        // The field, not `config()`: the hook borrows the configuration while it changes the
        // head.
        let Some(hook) = &self.setup.config.hooks.prepare_retry else {
            return Ok(());
        };
        // The hook changes the head the attempt it describes started from: it sees a copy.
        let before = self.head.clone();
        let attempt = Attempt::started_at(&before, Some(last), self.attempts, self.started);
        let result = hook(&mut self.head, &attempt);
        result.map_err(|error| self.hook_failed(error))
    }

    /// The error that ends a request whose prepare-retry hook failed with `error`.
    fn hook_failed(&mut self, error: BoxError) -> Error {
        self.body.finish();
        let record = self.record(Ended::Abandoned, None);
        Error::inner(&self.head.method, &self.head.uri, self.attempts, error).with_record(record)
    }

    /// The caller's output for an outcome that is not retried.
    pub(crate) fn give_back<R>(
        &mut self,
        outcome: Result<Response<R>, BoxError>,
        reason: StopReason,
    ) -> Result<Response<R>, Error> {
        // A gRPC call out of time ends as gRPC clients end it: DEADLINE_EXCEEDED.
        if reason == StopReason::Deadline && self.is_grpc() {
            let last = match &outcome {
                Ok(response) => {
                    Ending::answered(response.status(), response.headers(), response.extensions())
                }
                Err(error) => Ended::Error(classify(&**error)).into(),
            };
            return Err(self.deadline_error(last));
        }
        self.body.finish();
        let (error, record) = match outcome {
            Ok(mut response) => {
                let exhausted = match &self.config().hooks.when_exhausted {
                    Some(hook) if reason != StopReason::Policy => {
                        let (head, body) = response.into_parts();
                        let attempt = Attempt::started_at(
                            &self.head,
                            Some(Outcome::Response(&head)),
                            self.attempts,
                            self.started,
                        )
                        .stopping(reason);
                        let verdict = hook(&attempt);
                        response = Response::from_parts(head, body);
                        verdict.err()
                    }
                    _ => None,
                };
                let record = self.record(
                    Ending::answered(response.status(), response.headers(), response.extensions()),
                    Some(reason),
                );
                match exhausted {
                    Some(error) => (error, record),
                    None => {
                        // NOTE: a record of one attempt is what `Attempts::of` makes of a
                        // response without one: it is not inserted, which would cost three
                        // allocations.
                        if record.is_more_than_first() {
                            response.extensions_mut().insert(record);
                        }
                        return Ok(response);
                    }
                }
            }
            Err(error) => {
                let record = self.record(Ended::Error(classify(&*error)), Some(reason));
                (error, record)
            }
        };
        Err(
            Error::inner(&self.head.method, &self.head.uri, self.attempts, error)
                .with_record(record),
        )
    }

    /// The record of the request, which ends here, the layer having stopped for `stop`;
    /// `last` is how the last attempt ended, when nothing has recorded it yet.
    fn record(&mut self, last: impl Into<Ending>, stop: Option<StopReason>) -> Attempts {
        let record = match self.retry.as_mut() {
            Some(retry) => retry.record.take(last),
            None => Attempts::first(last),
        };
        #[cfg(feature = "opentelemetry")]
        if let Some(metrics) = self.setup.config.metrics() {
            metrics.request_ended(&self.head, &record, stop, self.is_grpc());
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = stop;
        record
    }

    /// The error for a request cut off by the deadline; `in_flight` when an attempt was
    /// under way, which is abandoned.
    pub(crate) fn deadline_exceeded(&mut self, in_flight: bool) -> Error {
        if let Some(trace) = self.telemetry.take_current() {
            trace.abandoned();
        }
        if in_flight {
            if let Some(retry) = self.retry.as_mut() {
                retry.record.ended(Ended::Abandoned, None);
            }
        }
        self.deadline_error(Ended::Abandoned)
    }

    /// The error for a request out of time; `last` is how the last attempt ended, when
    /// nothing has recorded it yet.
    fn deadline_error(&mut self, last: impl Into<Ending>) -> Error {
        self.body.finish();
        let deadline = self.deadline().map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(self.started)
        });
        tracing::debug!(attempt = self.attempts, deadline = ?deadline, "deadline exceeded");
        let record = self.record(last, Some(StopReason::Deadline));
        Error::inner(
            &self.head.method,
            &self.head.uri,
            self.attempts,
            DeadlineExceeded::new(deadline).into(),
        )
        .with_record(record)
    }

    /// The error for an inner service that failed to become ready for a retry.
    pub(crate) fn not_ready(&mut self, error: BoxError) -> Error {
        self.body.finish();
        Error::not_ready(
            Some((&self.head.method, &self.head.uri)),
            self.attempts,
            error,
        )
    }

    /// Whether this request is hedged: the layer hedges, a retry is allowed, the policy
    /// treats the request as idempotent (or the hedge's own rule admits it), and its body
    /// can be replayed from memory.
    pub(crate) fn is_hedged(&self) -> bool {
        if self.max_retries() == 0 || !self.body.is_concurrent() {
            return false;
        }
        #[cfg(feature = "grpc")]
        if let Some(call) = self.grpc() {
            return call.hedging().is_some();
        }
        let Some(hedge) = &self.config().hedge else {
            return false;
        };
        hedge.admits(&self.head, || {
            self.policy().treats_as_idempotent(&self.head)
        })
    }

    /// The delay before hedged attempt `n` (from 2) starts, after the one before.
    pub(crate) fn hedge_delay(&self, n: u32) -> Duration {
        #[cfg(feature = "grpc")]
        if let Some(hedging) = self.grpc().and_then(|c| c.hedging()) {
            return hedging.delay();
        }
        self.config()
            .hedge
            .as_ref()
            .map_or(Duration::ZERO, |h| h.delay(n))
    }

    /// The most attempts of a hedged request.
    pub(crate) fn hedge_max(&self) -> u32 {
        let allowed = self.max_retries().saturating_add(1);
        #[cfg(feature = "grpc")]
        if self.grpc().is_some() {
            // Its one transparent retry is not for hedges.
            return allowed - 1;
        }
        self.config()
            .hedge
            .as_ref()
            .map_or(1, |h| h.max().min(allowed))
    }

    /// Whether an attempt timeout starts the next hedge instead of cutting the slow attempt
    /// off.
    pub(crate) fn hedges_on_attempt_timeout(&self) -> bool {
        self.config()
            .hedge
            .as_ref()
            .is_some_and(|h| h.hedges_on_attempt_timeout())
            && !self.is_grpc()
    }

    /// The body of a hedged attempt: see [`Source::poll_concurrent_body`].
    pub(crate) fn poll_concurrent_body(&self, cx: &mut Context<'_>) -> Poll<Option<ReplayBody<B>>> {
        self.body.poll_concurrent_body(cx)
    }

    /// Records that an attempt started, after `waited`, as a hedge when others are in
    /// flight; it counts as abandoned until it ends.
    pub(crate) fn record_started(&mut self, waited: Option<(Duration, WaitReason)>, hedge: bool) {
        self.retrying().record.started(waited, hedge);
    }

    /// Records how attempt `index`, from 0, ended.
    pub(crate) fn record_ended(&mut self, index: usize, ended: Ending) {
        self.retrying().record.set_ended(index, ended);
    }

    /// The retry state, made on first use.
    fn retrying(&mut self) -> &mut Retrying<S> {
        let started = self.started;
        self.retry.get_or_insert_with(|| Retrying::new(started))
    }
}

impl<S> Retrying<S> {
    fn new(started: Instant) -> Box<Self> {
        Box::new(Retrying {
            service: None,
            at: started,
            last: None,
            record: Recorder::default(),
            rng: None,
        })
    }
}

/// The retries a request may make: its own setting, or the layer's.
// NOTE: `#[inline]` on this and `policy_of`: they are not generic, and the code that calls
// them is inlined into the client's crate, which can inline them only when marked.
#[inline]
fn max_retries_of(config: &Config, own: &Option<Box<Own>>) -> u32 {
    own.as_ref().map_or(config.max_retries, |o| o.max_retries)
}

/// The policy of a request: its own, or the layer's.
#[inline]
fn policy_of<'a>(config: &'a Config, own: &'a Option<Box<Own>>) -> &'a dyn Policy {
    match own.as_ref().and_then(|o| o.policy.as_deref()) {
        Some(policy) => policy,
        None => &*config.policy,
    }
}

/// How an attempt ended, for the record.
pub(crate) fn ended(outcome: Outcome<'_>) -> Ending {
    match outcome {
        Outcome::Response(head) => Ending::answered(head.status, &head.headers, &head.extensions),
        Outcome::Error(error) => Ended::Error(classify(error)).into(),
    }
}

/// The request's own settings once the layer's gRPC rules apply to it, when it is a gRPC
/// call: its method's retries, its deadline shortened to its `grpc-timeout` or its method's
/// timeout, and the call's state.
#[cfg(feature = "grpc")]
fn grpc_call(config: &Config, head: &request::Parts, own: Option<Box<Own>>) -> Option<Box<Own>> {
    let Some(rules) = &config.grpc else {
        return own;
    };
    let Some(call) = rules.call(head, max_retries_of(config, &own)) else {
        return own;
    };
    let mut own = own.unwrap_or_else(|| Own::of(config));
    own.deadline = match (own.deadline, call.timeout()) {
        (Some(own), Some(call)) => Some(own.min(call)),
        (own, call) => own.or(call),
    };
    own.max_retries = call.max_retries();
    own.grpc = Some(call);
    Some(own)
}

/// Captures the connection `head`'s attempt goes out on.
#[cfg(feature = "hyper")]
fn capture(head: &mut request::Parts) -> hyper_util::client::legacy::connect::CaptureConnection {
    // NOTE: hyper-util's function takes a request: lend it the head's extensions.
    let mut request = Request::new(());
    std::mem::swap(request.extensions_mut(), &mut head.extensions);
    let captured = hyper_util::client::legacy::connect::capture_connection(&mut request);
    std::mem::swap(request.extensions_mut(), &mut head.extensions);
    captured
}
