//! Who decides when a paced call may go: the [`Limiter`] trait.
//!
//! With pacing on (`pacing(true)`, `pacing_buckets(…)` or `limiter(…)` on a client builder),
//! every request first asks the client's limiter "may this call of bucket B, costing C units,
//! go now, or how long must it wait?". The units are reserved by the answer, so concurrent
//! callers queue up in order.
//!
//! | limiter | state | shared by |
//! |---|---|---|
//! | [`LocalLimiter`] (the default) | token buckets in memory | the clients of one process that are given the same `Arc<LocalLimiter>` |
//! | `RedisLimiter` (feature `redis`) | one GCRA state per bucket in Redis, decided by a Lua script on the Redis server's clock | every process using the same Redis and key namespace |
//!
//! # When a limiter cannot decide
//!
//! A limiter that cannot answer (Redis unreachable, a timeout) returns a [`LimiterError`]; no
//! units were taken. The client then applies the limiter's [`LimiterFallback`]:
//!
//! - [`LimiterFallback::Wait`] (the default): the call waits `retry_every` and asks again; after
//!   `give_up_after` without an answer it fails with [`Error::Limiter`],
//!   having sent nothing. Never more traffic than the shared budget, at the price of stalling.
//! - [`LimiterFallback::Local`]: the call is paced at once by in-process buckets holding the
//!   published rate and burst divided by `workers`, starting empty (the shared bucket may have
//!   just been drained), until the limiter answers again. The job goes on at `1/workers` of the
//!   key's budget per process.
//!
//! The first failure of an outage is logged once at `WARN` (target `iot_sdk::limiter`, naming
//! the bucket, the error and the fallback), the return at `INFO`.

#[cfg(feature = "redis")]
mod redis_gcra;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_gcra::{RedisLimiter, RedisLimiterBuilder};

use crate::error::{Error, Result};
pub use crate::rate_limit::PaceBucket;
use crate::rate_limit::RateLimit;

/// The longest a paced call sleeps for one decision (a misconfigured bucket cannot park a call
/// for longer).
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The shortest pause between two decisions asked of a limiter that cannot answer.
const MIN_RETRY_EVERY: Duration = Duration::from_millis(10);

/// Decides when a paced call may go. Object-safe: a client keeps an `Arc<dyn Limiter>`.
///
/// An implementation reserves `cost` units of `bucket` and answers how long the caller must
/// wait before sending (zero: now). It keys its state by [`PaceBucket::name`]; the bucket's
/// rate and burst come with every call.
///
/// ```
/// use std::time::Duration;
/// use futures::future::BoxFuture;
/// use iot_sdk::limiter::{Limiter, LimiterError, PaceBucket};
///
/// /// Lets every call go at once (what pacing off does, as a limiter).
/// #[derive(Debug)]
/// struct Unlimited;
///
/// impl Limiter for Unlimited {
///     fn acquire<'a>(
///         &'a self,
///         _bucket: &'a PaceBucket,
///         _cost: u32,
///     ) -> BoxFuture<'a, Result<Duration, LimiterError>> {
///         Box::pin(async { Ok(Duration::ZERO) })
///     }
/// }
///
/// let sgt = iot_sdk::sgt::Client::builder().limiter(Unlimited);
/// # let _ = sgt;
/// ```
pub trait Limiter: fmt::Debug + Send + Sync + 'static {
    /// Takes `cost` units from `bucket`: `Ok(wait)` when they are reserved and the call may go
    /// after `wait`; `Err` when the limiter cannot decide (nothing was reserved; the client
    /// applies [`Limiter::fallback`]).
    fn acquire<'a>(
        &'a self,
        bucket: &'a PaceBucket,
        cost: u32,
    ) -> BoxFuture<'a, std::result::Result<Duration, LimiterError>>;

    /// The rate-limit headers of a response to a call of `bucket` (by default ignored). The
    /// in-process limiter lowers its bucket to the server's `X-RateLimit-Remaining`.
    fn observe(&self, bucket: &PaceBucket, rate_limit: &RateLimit) {
        let _ = (bucket, rate_limit);
    }

    /// What a client does when [`Limiter::acquire`] fails (by default
    /// [`LimiterFallback::default`]: wait and ask again).
    fn fallback(&self) -> LimiterFallback {
        LimiterFallback::default()
    }
}

impl<L: Limiter + ?Sized> Limiter for Arc<L> {
    fn acquire<'a>(
        &'a self,
        bucket: &'a PaceBucket,
        cost: u32,
    ) -> BoxFuture<'a, std::result::Result<Duration, LimiterError>> {
        (**self).acquire(bucket, cost)
    }

    fn observe(&self, bucket: &PaceBucket, rate_limit: &RateLimit) {
        (**self).observe(bucket, rate_limit);
    }

    fn fallback(&self) -> LimiterFallback {
        (**self).fallback()
    }
}

/// What a client does when its limiter cannot decide (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimiterFallback {
    /// Wait `retry_every` and ask the limiter again; after `give_up_after` without an answer
    /// the call fails with [`Error::Limiter`], unsent.
    Wait {
        /// The pause between two questions (at least 10 ms).
        retry_every: Duration,
        /// How long one call may wait for an answer in all.
        give_up_after: Duration,
    },
    /// Pace in process with every bucket's rate and burst divided by `workers` (the number of
    /// processes sharing the key), until the limiter answers again.
    Local {
        /// How many processes share the key (at least 1).
        workers: u32,
    },
}

impl LimiterFallback {
    /// Wait for the limiter, asking every `retry_every`, for up to `give_up_after`.
    pub fn wait(retry_every: Duration, give_up_after: Duration) -> Self {
        LimiterFallback::Wait {
            retry_every,
            give_up_after,
        }
    }

    /// Pace in process at `1/workers` of each bucket.
    pub fn local(workers: u32) -> Self {
        LimiterFallback::Local {
            workers: workers.max(1),
        }
    }
}

impl Default for LimiterFallback {
    /// Wait, asking every 250 ms, for up to 60 s.
    fn default() -> Self {
        LimiterFallback::wait(Duration::from_millis(250), Duration::from_secs(60))
    }
}

/// A limiter could not decide (its store unreachable, a timeout). Carries no credentials.
#[derive(Debug)]
pub struct LimiterError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl LimiterError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        LimiterError {
            message: message.into(),
            source: None,
        }
    }

    /// The same, with the underlying error.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        LimiterError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for LimiterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LimiterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[derive(Debug, Clone, Copy)]
struct BucketState {
    tokens: f64,
    last: tokio::time::Instant,
}

/// In-process token buckets: the default limiter. A bucket starts full (its
/// [`capacity`](PaceBucket::capacity): the burst less the arrival margin), refills at
/// its rate and may go into debt: a call reserves its units before it waits, so concurrent
/// callers queue in order. Each response's `X-RateLimit-Remaining` lowers the bucket to what
/// the server says is left.
///
/// Give one `Arc<LocalLimiter>` to several clients of one process that share a key:
///
/// ```
/// use std::sync::Arc;
/// use iot_sdk::LocalLimiter;
///
/// let shared = Arc::new(LocalLimiter::new());
/// let a = iot_sdk::sgt::Client::builder().limiter(shared.clone());
/// let b = iot_sdk::sgt::Client::builder().limiter(shared);
/// # let _ = (a, b);
/// ```
#[derive(Debug, Default)]
pub struct LocalLimiter {
    states: Mutex<Vec<(&'static str, BucketState)>>,
    start_empty: bool,
}

impl LocalLimiter {
    /// Buckets that start full.
    pub fn new() -> Self {
        LocalLimiter::default()
    }

    /// Buckets that start empty (a fallback taking over from a shared limiter, whose bucket may
    /// have just been drained).
    fn starting_empty() -> Self {
        LocalLimiter {
            states: Mutex::new(Vec::new()),
            start_empty: true,
        }
    }

    /// Forgets every bucket: the next call of each starts it afresh.
    fn clear(&self) {
        lock(&self.states).clear();
    }

    /// Runs `f` on `bucket`'s state, refilled to now.
    fn with_state<R>(&self, bucket: &PaceBucket, f: impl FnOnce(&mut BucketState) -> R) -> R {
        let now = tokio::time::Instant::now();
        let capacity = bucket.capacity();
        let mut states = lock(&self.states);
        let i = match states.iter().position(|(n, _)| *n == bucket.name()) {
            Some(i) => i,
            None => {
                let tokens = if self.start_empty { 0.0 } else { capacity };
                states.push((bucket.name(), BucketState { tokens, last: now }));
                states.len().saturating_sub(1)
            }
        };
        let Some((_, s)) = states.get_mut(i) else {
            // Unreachable: `i` was found or pushed under the same lock.
            return f(&mut BucketState {
                tokens: 0.0,
                last: now,
            });
        };
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * bucket.rate_per_sec()).min(capacity);
        s.last = now;
        f(s)
    }

    /// Reserves `cost` units and says how long to wait for them.
    fn decide(&self, bucket: &PaceBucket, cost: u32) -> Duration {
        let rate = bucket.rate_per_sec();
        self.with_state(bucket, |s| {
            s.tokens -= f64::from(cost);
            if s.tokens < 0.0 && rate.is_finite() {
                Duration::try_from_secs_f64(-s.tokens / rate).unwrap_or(Duration::MAX)
            } else {
                Duration::ZERO
            }
        })
    }

    /// The bucket holds no more than the server says is left, less the same arrival margin
    /// as its capacity (`min` never raises it, so units reserved by waiting callers stay
    /// reserved). It then refills at its own rate: waiting for the server's full reset would be
    /// needlessly slow.
    fn lower(&self, bucket: &PaceBucket, rl: &RateLimit) {
        if let Some(remaining) = rl.remaining {
            let slack = f64::from(bucket.burst().max(1)) - bucket.capacity();
            self.with_state(bucket, |s| {
                s.tokens = s.tokens.min(remaining as f64 - slack)
            });
        }
    }
}

impl Limiter for LocalLimiter {
    fn acquire<'a>(
        &'a self,
        bucket: &'a PaceBucket,
        cost: u32,
    ) -> BoxFuture<'a, std::result::Result<Duration, LimiterError>> {
        Box::pin(std::future::ready(Ok(self.decide(bucket, cost))))
    }

    fn observe(&self, bucket: &PaceBucket, rate_limit: &RateLimit) {
        self.lower(bucket, rate_limit);
    }

    fn fallback(&self) -> LimiterFallback {
        // It always decides; never used.
        LimiterFallback::local(1)
    }
}

/// A client's pacing: its buckets, its limiter and the limiter's fallback.
pub(crate) struct Pacer {
    buckets: Vec<PaceBucket>,
    limiter: Arc<dyn Limiter>,
    fallback: LimiterFallback,
    /// The fallback's buckets (used with [`LimiterFallback::Local`]), emptied at each outage.
    local: LocalLimiter,
    degraded: AtomicBool,
}

impl fmt::Debug for Pacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pacer")
            .field("buckets", &self.buckets)
            .field("limiter", &self.limiter)
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl Pacer {
    pub(crate) fn new(buckets: &[PaceBucket], limiter: Arc<dyn Limiter>) -> Self {
        Pacer {
            buckets: buckets.to_vec(),
            fallback: limiter.fallback(),
            limiter,
            local: LocalLimiter::starting_empty(),
            degraded: AtomicBool::new(false),
        }
    }

    fn bucket(&self, name: &str) -> Option<&PaceBucket> {
        self.buckets.iter().find(|b| b.name() == name)
    }

    /// Waits until a call of `bucket` costing `cost` may go. An unknown bucket does not wait.
    /// `Err` only when the limiter could not decide and the fallback is to wait, for longer
    /// than it allows.
    pub(crate) async fn acquire(&self, bucket: &str, cost: u32) -> Result<()> {
        let Some(b) = self.bucket(bucket) else {
            return Ok(());
        };
        let mut waited = Duration::ZERO;
        loop {
            let error = match self.limiter.acquire(b, cost).await {
                Ok(wait) => {
                    if self.degraded.swap(false, Ordering::AcqRel) {
                        tracing::info!(
                            target: "iot_sdk::limiter",
                            bucket,
                            limiter = ?self.limiter,
                            "the rate limiter decides again; the fallback is over"
                        );
                    }
                    pause(bucket, wait).await;
                    return Ok(());
                }
                Err(e) => e,
            };
            self.degrade(b, &error);
            match self.fallback {
                LimiterFallback::Local { workers } => {
                    let wait = self.local.decide(&b.divided(workers), cost);
                    pause(bucket, wait).await;
                    return Ok(());
                }
                LimiterFallback::Wait {
                    retry_every,
                    give_up_after,
                } => {
                    let left = give_up_after.saturating_sub(waited);
                    if left.is_zero() {
                        return Err(Error::Limiter(Box::new(LimiterError::new(format!(
                            "no decision for the `{bucket}` bucket in {} ms: {error}",
                            waited.as_millis()
                        )))));
                    }
                    let step = retry_every.max(MIN_RETRY_EVERY).min(left);
                    tracing::debug!(
                        target: "iot_sdk::limiter",
                        bucket,
                        error = %error,
                        retry_in_ms = u64::try_from(step.as_millis()).unwrap_or(u64::MAX),
                        "the rate limiter cannot decide; asking again"
                    );
                    tokio::time::sleep(step).await;
                    waited = waited.saturating_add(step);
                }
            }
        }
    }

    /// The first failure of an outage: say so once, and empty the fallback's buckets.
    fn degrade(&self, bucket: &PaceBucket, error: &LimiterError) {
        if self.degraded.swap(true, Ordering::AcqRel) {
            return;
        }
        self.local.clear();
        match self.fallback {
            LimiterFallback::Local { workers } => tracing::warn!(
                target: "iot_sdk::limiter",
                bucket = bucket.name(),
                error = %error,
                workers,
                limiter = ?self.limiter,
                "the rate limiter cannot decide; pacing in process at 1/{workers} of each bucket until it is back"
            ),
            LimiterFallback::Wait {
                retry_every,
                give_up_after,
            } => tracing::warn!(
                target: "iot_sdk::limiter",
                bucket = bucket.name(),
                error = %error,
                retry_every_ms = u64::try_from(retry_every.as_millis()).unwrap_or(u64::MAX),
                give_up_after_ms = u64::try_from(give_up_after.as_millis()).unwrap_or(u64::MAX),
                limiter = ?self.limiter,
                "the rate limiter cannot decide; calls wait for it"
            ),
        }
    }

    /// The server's word on `bucket`, for the limiter (and the fallback's buckets during an
    /// outage).
    pub(crate) fn observe(&self, bucket: &str, rl: &RateLimit) {
        if let Some(b) = self.bucket(bucket) {
            self.limiter.observe(b, rl);
            if let (true, LimiterFallback::Local { workers }) =
                (self.degraded.load(Ordering::Acquire), self.fallback)
            {
                // The fallback's own (divided) bucket: refilled at the whole bucket's rate,
                // it would let each worker go at the whole rate.
                self.local.lower(&b.divided(workers), rl);
            }
        }
    }
}

/// Sleeps `wait` (at most an hour), saying so in a trace.
async fn pause(bucket: &str, wait: Duration) {
    if wait.is_zero() {
        return;
    }
    tracing::debug!(
        bucket,
        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        "pacing"
    );
    tokio::time::sleep(wait.min(MAX_WAIT)).await;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
