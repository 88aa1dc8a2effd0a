//! When and how calls are retried.
//!
//! # What retries
//!
//! | failure | idempotent call (GET, HEAD, PUT, DELETE, PATCH with `If-Match`) | other calls (POST, plain PATCH) |
//! |---|---|---|
//! | 429, 503 (not processed) | retried | retried |
//! | connect error (nothing was sent) | retried | retried |
//! | 500, 502, 504 | retried | not retried, unless the vendor promises it is safe (SGT: 500, 502) |
//! | timeout, reset after sending | retried | not retried |
//! | 400, 401, 403, 404, 409, 422, other 4xx | never | never |
//!
//! # How long to wait
//!
//! Delays grow exponentially from [`RetryPolicy::with_initial_delay`] (0.5 s) by a factor of two up
//! to [`RetryPolicy::with_max_delay`] (20 s), with *full jitter*: each wait is uniformly random in
//! `[0, envelope]`, which spreads clients apart better than adding a little noise to a fixed
//! schedule. The exponential envelope comes from the [`backon`] crate; the jitter is applied here
//! because backon's own jitter is additive (`[d, 2d)`), not full.
//!
//! A `Retry-After` from the server replaces the computed delay. If it asks for more than
//! [`RetryPolicy::with_retry_after_cap`] (60 s), the SDK does not sleep: it returns the rate-limited
//! error, whose [`crate::Error::retry_after`] tells the caller how long to wait.
//!
//! The loop also stops when the next wait would pass the total time budget
//! ([`RetryPolicy::with_time_budget`], 2 minutes), or when the client's shared [`RetryBudget`] is
//! empty: a token bucket (500 tokens, a retry costs 5, a success refunds 1) that keeps an outage from
//! turning every caller into a retry storm.
//!
//! ```
//! use std::time::Duration;
//! use iot_sdk::RetryPolicy;
//!
//! let patient = RetryPolicy::default()
//!     .with_max_attempts(5)
//!     .with_max_delay(Duration::from_secs(30))
//!     .with_time_budget(Duration::from_secs(300));
//! let never = RetryPolicy::none();
//! assert_eq!(never.max_attempts(), 1);
//! # let _ = patient;
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::error::{Error, RequestInfo, TransportErrorKind};

/// How a call is retried. Set per client, and per call where a builder offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_delay: Duration,
    max_delay: Duration,
    time_budget: Option<Duration>,
    retry_after_cap: Duration,
    jitter: bool,
}

impl Default for RetryPolicy {
    /// 3 attempts in all, 0.5 s → 20 s full-jitter exponential delays, 2-minute budget, Retry-After
    /// honoured up to 60 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            time_budget: Some(Duration::from_secs(120)),
            retry_after_cap: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// Never retry: one attempt, errors returned as they come.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Attempts in all, the first included. `0` is treated as `1`.
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The envelope of the first retry's delay.
    #[must_use]
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The largest envelope a computed delay can have.
    #[must_use]
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Stop retrying when the next wait would end more than `budget` after the call started.
    #[must_use]
    pub fn with_time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = Some(budget);
        self
    }

    /// No total time budget: only the attempt count limits retries.
    #[must_use]
    pub fn without_time_budget(mut self) -> Self {
        self.time_budget = None;
        self
    }

    /// The longest `Retry-After` the SDK will sleep for; above it the error is returned instead.
    #[must_use]
    pub fn with_retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// Use the exponential envelope itself as the delay, without jitter (deterministic: useful in
    /// tests; not recommended against a shared service).
    #[must_use]
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Attempts in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The total time budget, if any.
    pub fn time_budget(&self) -> Option<Duration> {
        self.time_budget
    }

    /// The `Retry-After` cap.
    pub fn retry_after_cap(&self) -> Duration {
        self.retry_after_cap
    }

    /// The delays before retry 1, 2, … (at most `max_attempts - 1` of them).
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let envelope = ExponentialBuilder::new()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .build();
        let jitter = self.jitter;
        envelope.map(move |d| if jitter { full_jitter(d) } else { d })
    }
}

fn full_jitter(envelope: Duration) -> Duration {
    let nanos = u64::try_from(envelope.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// What went wrong on one attempt, as far as retrying is concerned.
///
/// This one classification decides both whether the SDK's own loop tries again and what
/// [`crate::Error::is_retryable`] tells the caller, so the two cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The server answered with this status.
    Status(u16),
    /// The connection was never made: nothing was sent.
    Connect,
    /// Timeout or reset after the request may have been sent.
    AfterSend,
    /// A failure that the same request would meet again (a body over the size cap): never retried.
    Final,
}

impl FailureKind {
    /// How a transport failure of this kind counts for retrying.
    pub(crate) fn of_transport(kind: TransportErrorKind) -> Self {
        match kind {
            TransportErrorKind::Connect => FailureKind::Connect,
            TransportErrorKind::Timeout
            | TransportErrorKind::Request
            | TransportErrorKind::Other => FailureKind::AfterSend,
            TransportErrorKind::ResponseTooLarge => FailureKind::Final,
        }
    }
}

/// Whether `failure` is worth another attempt. `safe_statuses` are the 5xx statuses the vendor
/// promises are safe to retry even for non-idempotent calls.
pub(crate) fn is_retryable(failure: FailureKind, idempotent: bool, safe_statuses: &[u16]) -> bool {
    match failure {
        FailureKind::Connect => true,
        FailureKind::Status(429 | 503) => true,
        FailureKind::Status(s @ (500 | 502 | 504)) => idempotent || safe_statuses.contains(&s),
        FailureKind::Status(_) | FailureKind::Final => false,
        FailureKind::AfterSend => idempotent,
    }
}

/// What a [`RetryRule`] decides about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAction {
    /// Retry, even if the default matrix would not, after the policy's computed delay (or the
    /// server's `Retry-After`, capped as usual).
    Retry,
    /// Retry after exactly this delay (still within the attempt count, the time budget and the
    /// retry budget).
    RetryAfter(Duration),
    /// Do not retry, even if the default matrix would.
    Stop,
}

/// A failed attempt, as a [`RetryRule`] sees it.
#[derive(Debug)]
pub struct AttemptInfo<'a> {
    pub(crate) vendor: &'static str,
    pub(crate) request: &'a RequestInfo,
    pub(crate) attempt: u32,
    pub(crate) idempotent: bool,
    pub(crate) default_retry: bool,
    pub(crate) error: &'a Error,
}

impl AttemptInfo<'_> {
    /// The vendor: `sgt`, `sepolo` or `siliconwit`.
    pub fn vendor(&self) -> &'static str {
        self.vendor
    }

    /// The HTTP method (`GET`).
    pub fn method(&self) -> &str {
        self.request.method()
    }

    /// The URL path, without the query (`/v1/devices/dev_42`).
    pub fn path(&self) -> &str {
        self.request.path()
    }

    /// The attempt that failed, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The response status, if the attempt got a response.
    pub fn status(&self) -> Option<u16> {
        self.error.status()
    }

    /// Whether the call is considered safe to repeat.
    pub fn idempotent(&self) -> bool {
        self.idempotent
    }

    /// Whether the default matrix (the table in the [module docs](self)) would retry.
    pub fn default_retry(&self) -> bool {
        self.default_retry
    }

    /// The attempt's error.
    pub fn error(&self) -> &Error {
        self.error
    }
}

/// A caller's rule for which failures retry, consulted before the default matrix.
///
/// Register rules on a client's builder (`.retry_rule(..)`) and on a single call or list
/// (`.with_retry_rule(..)`). After a failed attempt the call's rules are asked first, then the
/// client's, each in registration order; the first `Some` decides, and when every rule says
/// `None` the default matrix does. A rule never lifts the attempt count, the time budget, the
/// `Retry-After` cap or the client's [`RetryBudget`]. A closure
/// `Fn(&AttemptInfo) -> Option<RetryAction>` is a rule. A rule that panics fails the call with
/// [`Error::Interceptor`].
///
/// ```
/// use iot_sdk::retry::{AttemptInfo, RetryAction};
///
/// let client = iot_sdk::sgt::Client::builder()
///     .api_key("sgt_live_example")
///     // A 409 on report runs is a lock held by another run: worth another try.
///     .retry_rule(|a: &AttemptInfo<'_>| {
///         (a.status() == Some(409) && a.path().ends_with("/reports")).then_some(RetryAction::Retry)
///     })
///     // Never repeat a device command, whatever failed.
///     .retry_rule(|a: &AttemptInfo<'_>| {
///         (a.method() == "POST" && a.path().ends_with("/commands")).then_some(RetryAction::Stop)
///     })
///     .build()?;
/// # let _ = client; Ok::<(), iot_sdk::Error>(())
/// ```
pub trait RetryRule: Send + Sync + 'static {
    /// `Some` to decide, `None` to leave it to the next rule and then the default matrix.
    fn classify(&self, attempt: &AttemptInfo<'_>) -> Option<RetryAction>;
}

impl<F> RetryRule for F
where
    F: Fn(&AttemptInfo<'_>) -> Option<RetryAction> + Send + Sync + 'static,
{
    fn classify(&self, attempt: &AttemptInfo<'_>) -> Option<RetryAction> {
        self(attempt)
    }
}

/// Retry rules in the order they are asked. Empty costs nothing (no allocation).
#[derive(Clone, Default)]
pub(crate) struct RetryRules(pub(crate) Vec<Arc<dyn RetryRule>>);

impl fmt::Debug for RetryRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} retry rules", self.0.len())
    }
}

impl RetryRules {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn push(&mut self, rule: Arc<dyn RetryRule>) {
        self.0.push(rule);
    }
}

/// What the retry loop knows after an attempt failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryDecision {
    /// How the attempt failed.
    pub(crate) kind: FailureKind,
    /// Whether the call is safe to repeat.
    pub(crate) idempotent: bool,
    /// The attempt that failed, from 1.
    pub(crate) attempt: u32,
    /// Attempts allowed in all (one more after a token refresh).
    pub(crate) max_attempts: u32,
    /// The server's `Retry-After`.
    pub(crate) retry_after: Option<Duration>,
    /// Time since the call started.
    pub(crate) elapsed: Duration,
    /// What the caller's retry rules decided, if one did.
    pub(crate) rule: Option<RetryAction>,
}

impl RetryPolicy {
    /// How long to wait before the next attempt, or why there is none: `computed` is the policy's
    /// next delay, `safe_statuses` the vendor's, `budget` the client's (a retry takes from it).
    pub(crate) fn next_delay(
        &self,
        d: &RetryDecision,
        computed: Option<Duration>,
        safe_statuses: &[u16],
        budget: &RetryBudget,
    ) -> Result<Duration, &'static str> {
        match d.rule {
            Some(RetryAction::Stop) => return Err("a retry rule said stop"),
            Some(RetryAction::Retry | RetryAction::RetryAfter(_)) => {}
            None if !is_retryable(d.kind, d.idempotent, safe_statuses) => {
                return Err("not retryable");
            }
            None => {}
        }
        let computed = match computed {
            Some(delay) if d.attempt < d.max_attempts => delay,
            _ => return Err("attempts exhausted"),
        };
        let delay = match (d.rule, d.retry_after) {
            (Some(RetryAction::RetryAfter(fixed)), _) => fixed,
            (_, Some(ra)) if ra > self.retry_after_cap => {
                return Err("Retry-After is above the cap");
            }
            (_, Some(ra)) => ra,
            (_, None) => computed,
        };
        if let Some(limit) = self.time_budget {
            if d.elapsed.saturating_add(delay) > limit {
                return Err("the retry time budget would be exceeded");
            }
        }
        if !budget.try_acquire() {
            tracing::warn!(attempt = d.attempt, "retry budget exhausted: not retrying");
            return Err("retry budget exhausted");
        }
        Ok(delay)
    }
}

/// A client-wide token bucket that limits retries during an outage.
///
/// Each retry takes [`RetryBudget::retry_cost`] tokens; each success puts
/// [`RetryBudget::success_refund`] back, up to the capacity. When the bucket cannot pay for a
/// retry, the error is returned at once. Defaults: 500 tokens, cost 5, refund 1 (AWS standard mode).
#[derive(Debug)]
pub struct RetryBudget {
    capacity: u32,
    retry_cost: u32,
    success_refund: u32,
    tokens: Mutex<u32>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(500, 5, 1)
    }
}

impl RetryBudget {
    /// A bucket of `capacity` tokens, starting full.
    pub fn new(capacity: u32, retry_cost: u32, success_refund: u32) -> Self {
        RetryBudget {
            capacity,
            retry_cost,
            success_refund,
            tokens: Mutex::new(capacity),
        }
    }

    /// A budget that never runs out.
    pub fn unlimited() -> Self {
        RetryBudget::new(u32::MAX, 0, 0)
    }

    /// Tokens one retry costs.
    pub fn retry_cost(&self) -> u32 {
        self.retry_cost
    }

    /// Tokens one success refunds.
    pub fn success_refund(&self) -> u32 {
        self.success_refund
    }

    /// Tokens left now.
    pub fn available(&self) -> u32 {
        *self.lock()
    }

    /// Takes the cost of one retry; `false` (and nothing taken) when there is not enough.
    pub(crate) fn try_acquire(&self) -> bool {
        let mut t = self.lock();
        match t.checked_sub(self.retry_cost) {
            Some(left) => {
                *t = left;
                true
            }
            None => false,
        }
    }

    pub(crate) fn on_success(&self) {
        let mut t = self.lock();
        *t = t.saturating_add(self.success_refund).min(self.capacity);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u32> {
        // A poisoned counter is still a valid counter.
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        use FailureKind::*;
        for idem in [true, false] {
            assert!(is_retryable(Status(429), idem, &[]));
            assert!(is_retryable(Status(503), idem, &[]));
            assert!(is_retryable(Connect, idem, &[]));
            for s in [400, 401, 403, 404, 409, 422, 418] {
                assert!(!is_retryable(Status(s), idem, &[500, 502]), "{s}");
            }
        }
        for s in [500, 502, 504] {
            assert!(is_retryable(Status(s), true, &[]));
            assert!(!is_retryable(Status(s), false, &[]));
        }
        assert!(is_retryable(AfterSend, true, &[]));
        assert!(!is_retryable(AfterSend, false, &[500, 502]));
        // SGT promises 500 and 502 are safe on any method, not 504.
        assert!(is_retryable(Status(500), false, &[500, 502]));
        assert!(is_retryable(Status(502), false, &[500, 502]));
        assert!(!is_retryable(Status(504), false, &[500, 502]));
    }

    #[test]
    fn delays_follow_the_envelope() {
        let p = RetryPolicy::default().with_max_attempts(8).without_jitter();
        let d: Vec<_> = p.delays().map(|d| d.as_millis()).collect();
        assert_eq!(d, vec![500, 1000, 2000, 4000, 8000, 16000, 20000]);
        assert_eq!(RetryPolicy::none().delays().count(), 0);
        assert_eq!(RetryPolicy::default().delays().count(), 2);
    }

    #[test]
    fn jitter_stays_inside_the_envelope() {
        let p = RetryPolicy::default().with_max_attempts(6);
        for _ in 0..200 {
            let envelope = [500u128, 1000, 2000, 4000, 8000];
            for (d, cap) in p.delays().zip(envelope) {
                assert!(d.as_millis() <= cap, "{d:?} > {cap}");
            }
        }
        // Not all the same: it is random.
        let samples: std::collections::HashSet<_> = (0..50)
            .map(|_| full_jitter(Duration::from_secs(1)))
            .collect();
        assert!(samples.len() > 1);
    }

    #[test]
    fn budget_drains_and_refills() {
        let b = RetryBudget::new(10, 5, 1);
        assert!(b.try_acquire());
        assert!(b.try_acquire());
        assert!(!b.try_acquire());
        assert_eq!(b.available(), 0);
        for _ in 0..20 {
            b.on_success();
        }
        assert_eq!(b.available(), 10);
        let u = RetryBudget::unlimited();
        for _ in 0..1000 {
            assert!(u.try_acquire());
        }
    }
}
