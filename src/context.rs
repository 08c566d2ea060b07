//! What a request's future knows of its request, and what it does between the states of
//! [`future`](crate::future): make each attempt's request, apply the decision after an
//! attempt, run the hooks, and build what the caller gets.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response, request, response};
use sync_wrapper::SyncWrapper;
use tokio::time::Instant;

use crate::body::{Reopen, Reopening, Replay, ReplayBody};
use crate::classify::classify;
use crate::config::{Config, after};
use crate::decide::{BodyState, Decision, History, Now, decide};
use crate::error::{BoxError, DeadlineExceeded, Error, Report};
use crate::hedge::Hedge;
use crate::hooks::PrepareRetry;
use crate::overrides::RetryOverride;
use crate::policy::{Attempt, Outcome, Policy, StopReason};
use crate::record::{Attempts, Ended, WaitReason};
use crate::rng::Rng;

/// What happens to an attempt's outcome.
pub(crate) enum Next<R> {
    /// It goes to the caller.
    Return(Result<Response<R>, Error>),
    /// It is retried; the outcome is kept until the next attempt is under way.
    Retry(Result<Response<R>, BoxError>),
}

/// Everything about the request that does not need pinning.
pub(crate) struct Ctx<B> {
    pub(crate) config: Arc<Config>,
    /// The request's own settings, in place of the layer's.
    overrides: Option<Box<RetryOverride>>,
    /// The caller's request head: every attempt starts from a copy of it.
    head: request::Parts,
    replay: Replay<B>,
    /// How to make the body again when the kept bytes cannot cover a retry.
    reopen: Option<Reopen<B>>,
    /// The attempts made, the one in flight included.
    attempts: u32,
    started: Instant,
    /// When the whole request must be done by, if the layer has a deadline.
    pub(crate) deadline: Option<Instant>,
    /// The jitter's generator, made when a backoff first needs it.
    rng: Option<Rng>,
    /// What only a request that is retried needs; made on its first retry, so that the
    /// future of a request that succeeds at once stays small.
    retry: Option<Box<Retrying<B>>>,
}

/// The state of a request that is being retried.
struct Retrying<B> {
    /// When the next attempt may start.
    at: Instant,
    /// The wait before it.
    wait: Duration,
    /// The outcome being retried, for the prepare-retry hook: its head, or its error.
    last: Option<Result<response::Parts, BoxError>>,
    /// Every attempt from the next on makes its body with the request's `Reopen`.
    reopen: bool,
    /// The body being made again, then made.
    reopening: Option<SyncWrapper<Reopening<B>>>,
    fresh: Option<B>,
    /// What happened so far; on the success path the record is made when it is given.
    record: Option<Attempts>,
    /// The wait before the attempt in flight, and why, for the record.
    waited: Option<(Duration, WaitReason)>,
}

impl<B> Retrying<B> {
    /// Records how the attempt in flight ended.
    fn note(&mut self, ended: Ended) {
        match &mut self.record {
            None => self.record = Some(Attempts::first(ended)),
            Some(record) => record.push(ended, self.waited.take(), false),
        }
    }
}

impl<B> Ctx<B> {
    /// The context of a request that starts now, and the body of its first attempt.
    #[inline(always)]
    pub(crate) fn start(
        config: Arc<Config>,
        mut head: request::Parts,
        body: B,
    ) -> (Self, ReplayBody<B>)
    where
        B: http_body::Body + 'static,
    {
        let now = Instant::now();
        if let Some(budget) = &config.budget {
            budget.deposit_at(now);
        }
        // NOTE: most requests carry no extension at all; looking one up costs more than
        // asking that.
        let (reopen, overrides) = if head.extensions.is_empty() {
            (None, None)
        } else {
            (
                head.extensions.remove::<Reopen<B>>(),
                head.extensions.remove::<RetryOverride>().map(Box::new),
            )
        };
        let deadline = deadline_of(&config, overrides.as_deref());
        // With no retry to come, nothing is kept.
        let cap =
            (max_retries_of(&config, overrides.as_deref()) > 0).then_some(config.replay_limit);
        let (body, replay) = ReplayBody::new(body, cap, config.memory.clone());
        let ctx = Ctx {
            deadline: deadline.map(|d| after(now, d)),
            config,
            overrides,
            head,
            replay,
            reopen,
            attempts: 1,
            started: now,
            rng: None,
            retry: None,
        };
        (ctx, body)
    }

    /// The number of the attempt in flight or last made, from 1.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The retries this request may make.
    fn max_retries(&self) -> u32 {
        max_retries_of(&self.config, self.overrides.as_deref())
    }

    /// This request's attempt timeout, if it has one.
    pub(crate) fn attempt_timeout(&self) -> Option<Duration> {
        self.overrides
            .as_ref()
            .and_then(|o| o.attempt_timeout)
            .or(self.config.attempt_timeout)
    }

    /// This request's deadline, from its start, if it has one.
    fn deadline_after(&self) -> Option<Duration> {
        deadline_of(&self.config, self.overrides.as_deref())
    }

    /// The caller's request head.
    pub(crate) fn head(&self) -> &request::Parts {
        &self.head
    }

    /// The request of the current attempt: a copy of the caller's head, with `body`.
    #[inline(always)]
    pub(crate) fn attempt_request(&self, body: ReplayBody<B>) -> Request<ReplayBody<B>> {
        let mut head = self.head.clone();
        if let Some(name) = &self.config.attempt_header {
            head.headers
                .insert(name.clone(), HeaderValue::from(self.attempts));
        }
        if let Some(hook) = &self.config.hooks.on_attempt {
            hook(&Attempt::started_at(
                &head,
                None,
                self.attempts,
                self.started,
            ));
        }
        Request::from_parts(head, body)
    }

    /// When the first attempt must end, if ever.
    pub(crate) fn first_attempt_ends(&self) -> Option<Instant> {
        self.attempt_ends(self.started)
    }

    /// When the current attempt, started at `now`, must end, if ever.
    pub(crate) fn attempt_ends(&self, now: Instant) -> Option<Instant> {
        let timeout = self.attempt_timeout().map(|t| after(now, t));
        match (timeout, self.deadline) {
            (Some(t), Some(d)) => Some(t.min(d)),
            (t, d) => t.or(d),
        }
    }

    /// Applies the decision after an attempt to its outcome.
    #[inline(always)]
    pub(crate) fn after_attempt<R>(&mut self, outcome: Result<Response<R>, BoxError>) -> Next<R> {
        match outcome {
            Ok(response) => {
                let (head, body) = response.into_parts();
                if let Some(hook) = &self.config.hooks.on_response {
                    let outcome = Some(Outcome::Response(&head));
                    hook(&Attempt::started_at(
                        &self.head,
                        outcome,
                        self.attempts,
                        self.started,
                    ));
                }
                let decision = self.decide(Outcome::Response(&head));
                let response = Response::from_parts(head, body);
                match decision {
                    Decision::Retry { .. } => Next::Retry(Ok(response)),
                    Decision::Stop(reason) => Next::Return(self.give_back(Ok(response), reason)),
                }
            }
            Err(error) => match self.decide(Outcome::Error(&*error)) {
                Decision::Retry { .. } => Next::Retry(Err(error)),
                Decision::Stop(reason) => Next::Return(self.give_back(Err(error), reason)),
            },
        }
    }

    /// The decision after the current attempt, paid from the budget when it is a retry.
    #[inline]
    fn decide(&mut self, outcome: Outcome<'_>) -> Decision {
        let history = History {
            attempts: self.attempts,
            max_retries: self.max_retries(),
            started: self.started,
            deadline: self.deadline,
            previous_wait: self.retry.as_ref().map_or(Duration::ZERO, |r| r.wait),
            body: self.body_state(),
            hedging: false,
        };
        // NOTE: the clock is read only for a retry: a request that succeeds reads it once,
        // when it starts.
        let mut now = Now::lazy();
        let mut decision = decide(
            &self.config,
            policy(&self.config, &self.overrides),
            &self.head,
            outcome,
            &history,
            &mut now,
            &mut self.rng,
        );
        if let Decision::Retry { wait, why } = decision {
            let now = now.get();
            // The last check: a retry that will happen is the only one paid for.
            if !self.pay_for_attempt(now) {
                decision = Decision::Stop(StopReason::Budget);
            } else {
                let retry = self.retrying();
                retry.note(ended(outcome));
                retry.wait = wait;
                retry.waited = Some((wait, why));
                retry.at = after(now, wait);
            }
        }
        if let (Decision::Stop(_), Some(retry)) = (decision, self.retry.as_mut()) {
            retry.note(ended(outcome));
        }
        log(self.attempts, self.max_retries(), outcome, &decision);
        decision
    }

    /// Whether a later attempt can have the request body.
    fn body_state(&self) -> BodyState {
        if self.replay.is_replayable() {
            BodyState::Replayable
        } else if self.reopen.is_some() {
            BodyState::Reopenable
        } else {
            BodyState::Spent
        }
    }

    /// Whether the next attempt's body is made again by the request's `Reopen`, rather than
    /// replayed from the kept bytes.
    pub(crate) fn reopens(&self) -> bool {
        self.retry.as_ref().is_some_and(|r| r.reopen)
            || (self.reopen.is_some() && !self.replay.is_replayable())
    }

    /// Ready once the earlier attempts' bodies are out of the way of the next one.
    pub(crate) fn poll_released(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.reopens() {
            // A body made again shares nothing with the earlier ones.
            return Poll::Ready(());
        }
        self.replay.poll_released(cx)
    }

    /// Settles where the next attempt's body comes from, once the earlier bodies were
    /// handed back (`released`) or the drain bound passed: the kept bytes, the request's
    /// `Reopen`, or nowhere — then the outcome goes to the caller.
    pub(crate) fn settle_body(&mut self, released: bool) -> Result<(), StopReason> {
        let reopening = self.reopens();
        let replayable = released && self.replay.is_replayable();
        if !reopening && !replayable && self.reopen.is_none() {
            // The body outgrew the cap while the attempt still sent it, or was not handed
            // back in time.
            return Err(if released {
                StopReason::BodyNotReplayable
            } else {
                StopReason::BodyInUse
            });
        }
        if reopening || !replayable {
            // The kept bytes cannot cover the retry: from now on every attempt makes the
            // body again, and nothing more is kept.
            self.retrying().reopen = true;
            self.replay.finish();
        }
        Ok(())
    }

    /// Keeps the outcome being retried for the prepare-retry hook, and gives back its body,
    /// if any, to be drained.
    pub(crate) fn keep<R>(&mut self, outcome: Result<Response<R>, BoxError>) -> Option<R> {
        let (kept, body) = match outcome {
            Ok(response) => {
                let (head, body) = response.into_parts();
                (Ok(head), Some(body))
            }
            Err(error) => (Err(error), None),
        };
        self.retrying().last = Some(kept);
        body
    }

    /// When the next attempt may start.
    pub(crate) fn next_at(&self) -> Instant {
        self.retry.as_ref().map_or_else(Instant::now, |r| r.at)
    }

    /// Starts making the body again, if the next attempt needs that. Returns whether it
    /// did.
    pub(crate) fn start_reopening(&mut self) -> bool {
        let (Some(reopen), Some(retry)) = (&self.reopen, self.retry.as_mut()) else {
            return false;
        };
        if !retry.reopen {
            return false;
        }
        tracing::trace!(attempt = self.attempts + 1, "reopening the body");
        retry.reopening = Some(SyncWrapper::new(reopen.open()));
        true
    }

    /// Polls the body being made again; ready with the error that ends the request if it
    /// could not be.
    pub(crate) fn poll_reopened(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let retry = self.retry.as_mut().expect("a retry is being prepared");
        let future = retry
            .reopening
            .as_mut()
            .expect("the body is being reopened");
        let made = std::task::ready!(future.get_mut().as_mut().poll(cx));
        retry.reopening = None;
        Poll::Ready(match made {
            Ok(body) => {
                retry.fresh = Some(body);
                Ok(())
            }
            Err(error) => {
                tracing::debug!(attempt = self.attempts, error = %Report::new(&*error), "reopening the body failed");
                let record = self
                    .retry
                    .as_mut()
                    .and_then(|r| r.record.take())
                    .expect("a retried request has a record");
                Err(
                    Error::reopen(&self.head.method, &self.head.uri, self.attempts, error)
                        .with_record(record),
                )
            }
        })
    }

    /// Runs the prepare-retry hook, then makes the request of the next attempt.
    pub(crate) fn next_request(&mut self) -> Result<Request<ReplayBody<B>>, Error> {
        self.prepare_retry()?;
        self.attempts = self.attempts.saturating_add(1);
        let body = match self.retry.as_mut().and_then(|r| r.fresh.take()) {
            Some(fresh) => ReplayBody::fresh(fresh),
            None => {
                if self.attempts > self.max_retries() {
                    // No attempt follows this one: its body need not keep anything.
                    self.replay.last_attempt();
                }
                self.replay.body()
            }
        };
        tracing::trace!(attempt = self.attempts, "sending");
        Ok(self.attempt_request(body))
    }

    /// Runs the prepare-retry hook on the head every attempt starts from.
    fn prepare_retry(&mut self) -> Result<(), Error> {
        let last = self.retry.as_ref().and_then(|r| r.last.as_ref());
        let (Some(hook), Some(last)) = (&self.config.hooks.prepare_retry, last) else {
            return Ok(());
        };
        let outcome = Outcome::of(last.as_ref());
        let result = run_prepare_retry(hook, &mut self.head, outcome, self.attempts, self.started);
        result.map_err(|error| self.hook_failed(error))
    }

    /// The error that ends a request whose prepare-retry hook failed with `error`.
    fn hook_failed(&mut self, error: BoxError) -> Error {
        self.replay.finish();
        let record = self.record(Ended::Abandoned);
        Error::inner(&self.head.method, &self.head.uri, self.attempts, error).with_record(record)
    }

    /// The caller's output for an outcome that is not retried.
    pub(crate) fn give_back<R>(
        &mut self,
        outcome: Result<Response<R>, BoxError>,
        reason: StopReason,
    ) -> Result<Response<R>, Error> {
        self.replay.finish();
        let error = match outcome {
            Ok(mut response) => {
                let exhausted = match &self.config.hooks.when_exhausted {
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
                let record = self.record(Ended::Status(response.status()));
                match exhausted {
                    Some(error) => (error, record),
                    None => {
                        response.extensions_mut().insert(record);
                        return Ok(response);
                    }
                }
            }
            Err(error) => {
                let record = self.record(Ended::Error(classify(&*error)));
                (error, record)
            }
        };
        let (error, record) = error;
        Err(
            Error::inner(&self.head.method, &self.head.uri, self.attempts, error)
                .with_record(record),
        )
    }

    /// The record of the request so far; `last` is how the last attempt ended, when nothing
    /// has recorded it yet.
    fn record(&mut self, last: Ended) -> Attempts {
        self.retry
            .as_mut()
            .and_then(|r| r.record.take())
            .unwrap_or_else(|| Attempts::first(last))
    }

    /// The error for a request cut off by the deadline; `in_flight` when an attempt was
    /// under way, which is abandoned.
    pub(crate) fn deadline_exceeded(&mut self, in_flight: bool) -> Error {
        self.replay.finish();
        let deadline = self.deadline_after().unwrap_or_default();
        tracing::debug!(attempt = self.attempts, deadline = ?deadline, "deadline exceeded");
        if in_flight {
            if let Some(retry) = self.retry.as_mut() {
                retry.note(Ended::Abandoned);
            }
        }
        let record = self.record(Ended::Abandoned);
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
        self.replay.finish();
        Error::not_ready(
            Some((&self.head.method, &self.head.uri)),
            self.attempts,
            error,
        )
    }

    /// Whether the deadline has passed at `now`.
    pub(crate) fn past_deadline(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    /// This request's hedge, if it is hedged: the layer hedges, a retry is allowed, the
    /// policy treats the request as idempotent (or the hedge's own rule admits it), and its
    /// body can be replayed from memory.
    pub(crate) fn hedge(&self) -> Option<&Hedge> {
        let hedge = self.config.hedge.as_ref()?;
        if self.max_retries() == 0 || self.reopen.is_some() || !self.replay.is_replayable() {
            return None;
        }
        let policy = policy(&self.config, &self.overrides);
        hedge
            .admits(&self.head, || policy.treats_as_idempotent(&self.head))
            .then_some(hedge)
    }

    /// The delay before attempt `n` of a hedged request.
    pub(crate) fn hedge_delay(&self, n: u32) -> Duration {
        self.config
            .hedge
            .as_ref()
            .map_or(Duration::ZERO, |h| h.delay(n))
    }

    /// When the request started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// The attempts a hedged request may make in all.
    pub(crate) fn hedged_attempts(&self, hedge: &Hedge) -> u32 {
        hedge.max().min(self.max_retries().saturating_add(1))
    }

    /// Runs the response hook on attempt `number` of a hedged request, and decides what
    /// follows its outcome when `started` attempts of at most `max` have started. Nothing
    /// is paid from the budget here: an attempt is paid for when it starts.
    pub(crate) fn decide_hedged(
        &mut self,
        number: u32,
        started: u32,
        max: u32,
        outcome: Outcome<'_>,
    ) -> Decision {
        if let (Some(hook), Outcome::Response(_)) = (&self.config.hooks.on_response, outcome) {
            hook(&Attempt::started_at(
                &self.head,
                Some(outcome),
                number,
                self.started,
            ));
        }
        let history = History {
            attempts: started,
            max_retries: max.saturating_sub(1),
            started: self.started,
            deadline: self.deadline,
            previous_wait: Duration::ZERO,
            body: self.body_state(),
            hedging: true,
        };
        let decision = decide(
            &self.config,
            policy(&self.config, &self.overrides),
            &self.head,
            outcome,
            &history,
            &mut Now::lazy(),
            &mut self.rng,
        );
        log(number, max.saturating_sub(1), outcome, &decision);
        decision
    }

    /// The body of a hedged attempt: see [`Replay::poll_concurrent_body`].
    pub(crate) fn poll_concurrent_body(&self, cx: &mut Context<'_>) -> Poll<Option<ReplayBody<B>>> {
        self.replay.poll_concurrent_body(cx)
    }

    /// Pays for an attempt after the first from the budget; `false` when it refuses.
    pub(crate) fn pay_for_attempt(&self, now: Instant) -> bool {
        self.config
            .budget
            .as_ref()
            .is_none_or(|budget| budget.withdraw_at(now))
    }

    /// Runs the prepare-retry hook before an attempt of a hedged request that follows
    /// `last`, an outcome that is retried.
    pub(crate) fn prepare_hedged(&mut self, last: Outcome<'_>) -> Result<(), BoxError> {
        match &self.config.hooks.prepare_retry {
            Some(hook) => {
                run_prepare_retry(hook, &mut self.head, last, self.attempts, self.started)
            }
            None => Ok(()),
        }
    }

    /// The request of attempt `number` of a hedged request, with `body`.
    pub(crate) fn hedged_request(
        &mut self,
        number: u32,
        body: ReplayBody<B>,
    ) -> Request<ReplayBody<B>> {
        self.attempts = number;
        tracing::trace!(attempt = number, "sending");
        self.attempt_request(body)
    }

    /// The caller's output when a hedged request ends with `outcome`; `record` says what
    /// happened to every attempt.
    pub(crate) fn give_back_hedged<R>(
        &mut self,
        record: Attempts,
        outcome: Result<Response<R>, BoxError>,
        reason: StopReason,
    ) -> Result<Response<R>, Error> {
        self.retrying().record = Some(record);
        self.give_back(outcome, reason)
    }

    /// The error that ends a hedged request early: the deadline passed, or the prepare-retry
    /// hook failed (`Some(error)`).
    pub(crate) fn fail_hedged(&mut self, record: Attempts, error: Option<BoxError>) -> Error {
        self.retrying().record = Some(record);
        match error {
            None => self.deadline_exceeded(false),
            Some(error) => self.hook_failed(error),
        }
    }

    /// The retry state, made on first use.
    fn retrying(&mut self) -> &mut Retrying<B> {
        let started = self.started;
        self.retry.get_or_insert_with(|| {
            Box::new(Retrying {
                at: started,
                wait: Duration::ZERO,
                last: None,
                reopen: false,
                reopening: None,
                fresh: None,
                record: None,
                waited: None,
            })
        })
    }
}

/// Runs the prepare-retry `hook` on `head`, the head every attempt starts from, after
/// attempt `attempts` ended with `last`.
fn run_prepare_retry(
    hook: &PrepareRetry,
    head: &mut request::Parts,
    last: Outcome<'_>,
    attempts: u32,
    started: Instant,
) -> Result<(), BoxError> {
    // The hook changes the head the attempt it describes started from: it sees a copy.
    let before = head.clone();
    let attempt = Attempt::started_at(&before, Some(last), attempts, started);
    hook(head, &attempt)
}

/// The retries a request may make: its own setting, or the layer's.
fn max_retries_of(config: &Config, overrides: Option<&RetryOverride>) -> u32 {
    overrides
        .and_then(|o| o.max_retries)
        .unwrap_or(config.max_retries)
}

/// A request's deadline from its start: its own, or the layer's, if either has one.
fn deadline_of(config: &Config, overrides: Option<&RetryOverride>) -> Option<Duration> {
    overrides.and_then(|o| o.deadline).or(config.deadline)
}

/// The policy of a request: its own, or the layer's.
fn policy<'a>(config: &'a Config, overrides: &'a Option<Box<RetryOverride>>) -> &'a dyn Policy {
    match overrides.as_ref().and_then(|o| o.policy.as_deref()) {
        Some(policy) => policy,
        None => &*config.policy,
    }
}

/// How an attempt ended, for the record.
pub(crate) fn ended(outcome: Outcome<'_>) -> Ended {
    match outcome {
        Outcome::Response(head) => Ended::Status(head.status),
        Outcome::Error(error) => Ended::Error(classify(error)),
    }
}

/// One event per decision: `retrying` and `not retrying` at debug, a success at trace.
fn log(attempt: u32, max_retries: u32, outcome: Outcome<'_>, decision: &Decision) {
    let left = max_retries.saturating_sub(attempt);
    match (decision, outcome) {
        (Decision::Retry { wait, why }, Outcome::Response(head)) => tracing::debug!(
            attempt,
            status = head.status.as_u16(),
            wait = ?wait,
            wait_from = %why,
            retries_left = left,
            "retrying",
        ),
        (Decision::Retry { wait, why }, Outcome::Error(error)) => tracing::debug!(
            attempt,
            error = %Report::new(error),
            class = ?classify(error),
            wait = ?wait,
            wait_from = %why,
            retries_left = left,
            "retrying",
        ),
        (Decision::Stop(_), Outcome::Response(head)) if head.status.is_success() => {
            tracing::trace!(attempt, status = head.status.as_u16(), "done")
        }
        (Decision::Stop(reason), Outcome::Response(head)) => tracing::debug!(
            attempt,
            status = head.status.as_u16(),
            reason = %reason,
            "not retrying",
        ),
        (Decision::Stop(reason), Outcome::Error(error)) => tracing::debug!(
            attempt,
            error = %Report::new(error),
            class = ?classify(error),
            reason = %reason,
            "not retrying",
        ),
    }
}
