//! A hedged request: several attempts in flight at once, the first acceptable outcome wins.
//!
//! [`Hedge`](crate::hedge::Hedge) says what happens; this is how. The response future moves its
//! first attempt here when the request is hedged, and every attempt of the request then
//! lives in [`Hedging`]: boxed, so that the future of a request that is not hedged stays as
//! it was, and in one `Vec`, so that dropping the future drops them all. Nothing is spawned.
//!
//! Each poll:
//!
//! 1. polls the attempts in flight, in the order they started. The first outcome the policy
//!    does not retry wins, and the others are dropped; an outcome that is retried is kept
//!    as the last one and brings the next attempt forward to now (or to the end of the wait
//!    the server asked for);
//! 2. starts the next attempt when its time has come: once its body can be had alongside
//!    the others, the budget pays for it and the service is ready;
//! 3. gives the last outcome back when no attempt is in flight and none may start;
//! 4. arms the future's one timer for the earliest of the next attempt, the attempt
//!    timeouts and the deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, response};
use tokio::time::Instant;
use tower_service::Service;

use super::Timer;
use super::session::{Session, ended};
use crate::body::ReplayBody;
use crate::config::after;
use crate::decide::{Decision, Now};
use crate::error::{AttemptTimedOut, BoxError, Error};
use crate::policy::{Outcome, StopReason};
use crate::record::WaitReason;
use crate::telemetry::{AttemptInfo, AttemptTrace};

/// The attempts of a hedged request.
pub(crate) struct Hedging<F, R, B> {
    /// The attempts in flight, in the order they started.
    flights: Vec<Flight<F>>,
    /// The attempts allowed.
    max: u32,
    /// Whether an attempt timeout starts the next attempt instead of cutting the slow one
    /// off.
    hedge_on_timeout: bool,
    /// When the next attempt starts, and the wait before it with its reason, for the
    /// record; `None` once no attempt may start.
    next: Option<(Instant, Duration, WaitReason)>,
    /// Why no attempt may start, once none may.
    stopped: StopReason,
    /// The last outcome that was retried: it goes to the caller if nothing better comes.
    last: Option<Split<R>>,
    /// The body of the attempt about to start, made while the service was not yet ready.
    body: Option<ReplayBody<B>>,
    /// Since when the next attempt has waited for an earlier attempt's body, none in flight.
    held_since: Option<Instant>,
}

/// One attempt in flight.
struct Flight<F> {
    future: Pin<Box<F>>,
    /// Its span and start.
    trace: AttemptTrace,
    /// Its place in the record, from 0.
    index: usize,
    /// When it is cut off (or hedged, with `on_attempt_timeout`), if ever.
    ends: Option<Instant>,
}

/// An outcome with its head apart, so that the policy and the hooks can see it.
type Split<R> = Result<(response::Parts, R), BoxError>;

impl<F, R, B> Hedging<F, R, B> {
    /// The attempts of a hedged request whose first attempt, `first`, started with it.
    /// Every attempt started is recorded in the session, in order; those still in flight,
    /// or dropped, count as abandoned until they end.
    pub(crate) fn new<S>(first: F, trace: AttemptTrace, session: &mut Session<S, B>) -> Self {
        let now = session.started();
        let delay = session.hedge_delay(2);
        let max = session.hedge_max();
        let hedge_on_timeout = session.hedges_on_attempt_timeout();
        session.record_started(None, false);
        Hedging {
            flights: vec![Flight {
                future: Box::pin(first),
                trace,
                index: 0,
                ends: session.attempt_timeout().map(|t| after(now, t)),
            }],
            max,
            hedge_on_timeout,
            next: Some((after(now, delay), delay, WaitReason::Hedge)),
            stopped: StopReason::Exhausted,
            last: None,
            body: None,
            held_since: None,
        }
    }

    /// Drives the attempts; ready with the caller's output. The future drops this set as
    /// soon as it is ready, and with it every attempt still in flight, which cancels it.
    pub(crate) fn poll<S>(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session<S, B>,
        timer: &mut Timer,
    ) -> Poll<Result<Response<R>, Error>>
    where
        S: Service<Request<ReplayBody<B>>, Future = F, Response = Response<R>> + Clone,
        S::Error: Into<BoxError>,
        F: Future<Output = Result<Response<R>, S::Error>>,
    {
        loop {
            let now = Instant::now();
            if session.past_deadline(now) {
                // The attempts in flight are dropped with this, which cancels them.
                self.abandon();
                return Poll::Ready(Err(session.deadline_exceeded(false)));
            }

            let mut i = 0;
            while i < self.flights.len() {
                let flight = &mut self.flights[i];
                let polled = {
                    let _entered = flight.trace.entered();
                    flight.future.as_mut().poll(cx)
                };
                let outcome = match polled {
                    Poll::Ready(result) => result.map_err(Into::into),
                    Poll::Pending => {
                        let timed_out = flight.ends.is_some_and(|ends| ends <= now);
                        let timeout = session.attempt_timeout().unwrap_or_default();
                        if timed_out && self.hedge_on_timeout {
                            // The slow attempt goes on; the next one starts now, unless the
                            // server asked for a wait.
                            flight.ends = None;
                            if let Some((_, _, WaitReason::Hedge)) = self.next {
                                self.next = Some((now, timeout, WaitReason::Hedge));
                            }
                        }
                        if !timed_out || self.hedge_on_timeout {
                            i += 1;
                            continue;
                        }
                        Err(AttemptTimedOut::new(timeout).into())
                    }
                };
                // Dropping the flight also cuts off an attempt that timed out.
                let Flight { index, trace, .. } = self.flights.remove(i);
                if let Some(output) = self.settle(session, index, trace, outcome, now) {
                    return Poll::Ready(output);
                }
            }

            // Whether the next attempt is due but held up by its body or the service, which
            // wake the task when that changes.
            let mut held = false;
            if let Some((at, wait, why)) = self.next {
                if at <= now {
                    match self.start(cx, session, now, (wait, why)) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                        Poll::Pending => held = true,
                    }
                }
            }

            let mut wake = session.deadline();
            if self.flights.is_empty() {
                let Some(_) = self.next else {
                    let last = self.last.take().expect("an attempt ended");
                    let output = last.map(|(head, body)| Response::from_parts(head, body));
                    return Poll::Ready(session.give_back(output, self.stopped));
                };
                if held && self.body.is_none() {
                    // An ended attempt's body is still being read: wait for it as a retry
                    // would, for at most the drain timeout.
                    let since = *self.held_since.get_or_insert(now);
                    let bound = after(since, session.config().drain_timeout);
                    if bound <= now {
                        self.next = None;
                        self.stopped = StopReason::BodyInUse;
                        continue;
                    }
                    wake = earliest(wake, bound);
                }
            }
            for flight in &self.flights {
                if let Some(ends) = flight.ends {
                    wake = earliest(wake, ends);
                }
            }
            if let (Some((at, _, _)), false) = (self.next, held) {
                wake = earliest(wake, at);
            }
            let Some(at) = wake else {
                return Poll::Pending;
            };
            timer.arm(at);
            if timer.poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Applies the decision after attempt `index`: ready with the caller's output when the
    /// outcome wins.
    fn settle<S>(
        &mut self,
        session: &mut Session<S, B>,
        index: usize,
        trace: AttemptTrace,
        outcome: Result<Response<R>, BoxError>,
        now: Instant,
    ) -> Option<Result<Response<R>, Error>> {
        let outcome = outcome.map(Response::into_parts);
        let seen = view(&outcome);
        let max_retries = self.max.saturating_sub(1);
        let number = index as u32 + 1;
        let decision = session.judge(
            number,
            session.attempts(),
            max_retries,
            true,
            seen,
            &mut Now::lazy(),
        );
        session.record_ended(index, ended(seen));
        session.attempt_ended(trace, seen, &decision);
        match decision {
            Decision::Stop(StopReason::Policy) => {
                // The winner: every other attempt is dropped with this, which cancels it.
                self.abandon();
                let output = outcome.map(|(head, body)| Response::from_parts(head, body));
                return Some(session.give_back(output, StopReason::Policy));
            }
            Decision::Stop(reason) => {
                self.next = None;
                self.stopped = reason;
            }
            Decision::Retry { wait, why } => {
                if self.next.is_some() {
                    self.next = Some((after(now, wait), wait, why));
                }
            }
        }
        // The outcome it replaces is dropped, body unread.
        self.last = Some(outcome);
        None
    }

    /// The attempts in flight will be dropped: their spans say so.
    fn abandon(&mut self) {
        for flight in &mut self.flights {
            std::mem::take(&mut flight.trace).abandoned();
        }
    }

    /// Starts the next attempt, after `waited`; ready once it started or none may start.
    fn start<S>(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session<S, B>,
        now: Instant,
        waited: (Duration, WaitReason),
    ) -> Poll<Result<(), Error>>
    where
        S: Service<Request<ReplayBody<B>>, Future = F, Response = Response<R>> + Clone,
        S::Error: Into<BoxError>,
    {
        // The session counts the attempts started: the last one started is its number.
        let started = session.attempts();
        if started >= self.max {
            self.next = None;
            self.stopped = StopReason::Exhausted;
            return Poll::Ready(Ok(()));
        }
        if self.body.is_none() {
            let Some(body) = std::task::ready!(session.poll_concurrent_body(cx)) else {
                self.next = None;
                self.stopped = StopReason::BodyNotReplayable;
                return Poll::Ready(Ok(()));
            };
            self.held_since = None;
            // A hedge's attempts are not counted as failures by a throttle: it only asks
            // whether the throttle allows another.
            if !session.pay_for_attempt(now, crate::budget::Spend::Hedge) {
                // A hedge the budget refuses is not started.
                tracing::debug!(
                    attempt = started + 1,
                    "the retry budget is spent: not hedging"
                );
                self.next = None;
                self.stopped = StopReason::Budget;
                return Poll::Ready(Ok(()));
            }
            self.body = Some(body);
        }
        if let Err(error) = std::task::ready!(session.service().poll_ready(cx)) {
            self.body = None;
            let error = error.into();
            if self.flights.is_empty() {
                return Poll::Ready(Err(session.not_ready(error)));
            }
            // The attempts in flight go on; no other starts.
            tracing::debug!(error = %crate::error::Report::new(&*error), "the service failed: not hedging");
            self.next = None;
            return Poll::Ready(Ok(()));
        }
        if let Some(last) = &self.last {
            if let Err(error) = session.prepare(view(last)) {
                return Poll::Ready(Err(error));
            }
        }
        let body = self.body.take().expect("the body was made above");
        let hedge = !self.flights.is_empty();
        let number = started + 1;
        session.record_started(Some(waited), hedge);
        tracing::trace!(attempt = number, "sending");
        let info = AttemptInfo::retry(number, Some(waited)).hedge(hedge);
        let (request, trace) = session.attempt_request(info, body);
        let future = {
            let _attempt = trace.entered();
            session.service().call(request)
        };
        self.flights.push(Flight {
            future: Box::pin(future),
            trace,
            index: number as usize - 1,
            ends: session.attempt_timeout().map(|t| after(now, t)),
        });
        self.next = if number < self.max {
            let delay = session.hedge_delay(number + 1);
            Some((after(now, delay), delay, WaitReason::Hedge))
        } else {
            self.stopped = StopReason::Exhausted;
            None
        };
        Poll::Ready(Ok(()))
    }
}

/// What the policy and the hooks see of an outcome.
fn view<R>(outcome: &Split<R>) -> Outcome<'_> {
    Outcome::of(outcome.as_ref().map(|(head, _)| head))
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}
