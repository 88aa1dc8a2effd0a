//! A [`Limiter`] shared by every process that uses the same Redis and key namespace.
//!
//! Each bucket is one Redis string, `<namespace>:<bucket name>`, holding its GCRA theoretical
//! arrival time (TAT) in microseconds of the Redis server's clock. One decision is one
//! `EVALSHA` of [`SCRIPT`]: the script reads the server's `TIME`, moves the TAT forward by the
//! call's cost and answers the wait, atomically, so workers with skewed clocks or racing each
//! other still share one budget. The key expires when its bucket would be full again.
//!
//! The GCRA is the in-process token bucket written as a time: a bucket of rate `r` (emission
//! interval `T = 1/r`) and capacity `k` ([`PaceBucket::capacity`]: the burst less the arrival
//! margin) holding `k − (TAT − now)/T` tokens. A call of cost `c` sets
//! `TAT = max(TAT, now) + c·T` and waits `max(0, TAT − now − k·T)`, which is exactly the
//! in-process bucket's `−tokens / r` after it took `c` (debt included): the same buckets,
//! bursts, margin and queueing, shared.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script};

use super::{Limiter, LimiterError, LimiterFallback, PaceBucket};
use crate::error::{Error, Result};

/// The decision, run atomically on the Redis server.
///
/// `KEYS[1]`: the bucket's key. `ARGV`: the emission interval and the tolerance (the capacity's
/// worth of intervals) in microseconds (decimals), the cost. Returns the wait in whole
/// microseconds (rounded up).
pub(crate) const SCRIPT: &str = r#"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + cost * interval
local wait = new_tat - now - tolerance
if wait < 0 then
  wait = 0
end
local ttl = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
return math.ceil(wait)
"#;

/// The Redis-backed limiter (feature `redis`). Cheap to clone: clones share one connection.
///
/// ```no_run
/// use iot_sdk::{LimiterFallback, RedisLimiter};
///
/// # fn demo() -> iot_sdk::Result<()> {
/// // Four workers share one key: if Redis is unreachable, each paces at a quarter.
/// let limiter = RedisLimiter::builder("redis://127.0.0.1:6379", "acme-prod-sgt")
///     .fallback(LimiterFallback::local(4))
///     .build()?;
/// let sgt = iot_sdk::sgt::Client::builder()
///     .api_key(std::env::var("SGT_API_KEY").unwrap_or_default())
///     .limiter(limiter)
///     .build()?;
/// # let _ = sgt; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisLimiter {
    inner: Arc<Shared>,
}

struct Shared {
    client: Client,
    /// `host:port` (or the socket path): what `Debug` and traces show, never a password.
    target: String,
    namespace: String,
    script: Script,
    timeout: Duration,
    reconnect_every: Duration,
    fallback: LimiterFallback,
    conn: tokio::sync::Mutex<Conn>,
}

#[derive(Default)]
struct Conn {
    live: Option<MultiplexedConnection>,
    /// No connection attempt before this instant (after a failed one).
    next_try: Option<tokio::time::Instant>,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("redis", &self.inner.target)
            .field("namespace", &self.inner.namespace)
            .field("timeout", &self.inner.timeout)
            .field("fallback", &self.inner.fallback)
            .finish()
    }
}

/// Settings of a [`RedisLimiter`]; see [`RedisLimiter::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisLimiterBuilder {
    url: String,
    namespace: String,
    timeout: Duration,
    reconnect_every: Duration,
    fallback: LimiterFallback,
}

impl fmt::Debug for RedisLimiterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: only the namespace and the settings are shown.
        f.debug_struct("RedisLimiterBuilder")
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("reconnect_every", &self.reconnect_every)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A limiter on the Redis at `url` (`redis://[:password@]host:port[/db]` or
    /// `redis+unix:///path`), keeping its buckets under `namespace`. Every process sharing one
    /// API key must use the same namespace, and processes with different keys different ones
    /// (name the key's owner and environment, never the key itself).
    pub fn builder(url: impl Into<String>, namespace: impl Into<String>) -> RedisLimiterBuilder {
        RedisLimiterBuilder {
            url: url.into(),
            namespace: namespace.into(),
            timeout: Duration::from_secs(1),
            reconnect_every: Duration::from_secs(1),
            fallback: LimiterFallback::default(),
        }
    }

    /// The Redis key of `bucket`'s state: `<namespace>:<bucket name>`.
    pub fn key(&self, bucket: &PaceBucket) -> String {
        format!("{}:{}", self.inner.namespace, bucket.name())
    }

    /// A connection: the live one, or a new one unless the last attempt failed less than
    /// `reconnect_every` ago.
    async fn connection(&self) -> std::result::Result<MultiplexedConnection, LimiterError> {
        let s = &self.inner;
        let mut conn = s.conn.lock().await;
        if let Some(c) = &conn.live {
            return Ok(c.clone());
        }
        let now = tokio::time::Instant::now();
        if let Some(at) = conn.next_try {
            if now < at {
                return Err(LimiterError::new(format!(
                    "Redis at {} is unreachable (next connection attempt in {} ms)",
                    s.target,
                    at.saturating_duration_since(now).as_millis()
                )));
            }
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(s.timeout))
            .set_response_timeout(Some(s.timeout));
        let attempt = s
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let result = match tokio::time::timeout(s.timeout.saturating_mul(2), attempt).await {
            Ok(r) => r.map_err(|e| {
                LimiterError::with_source(format!("cannot connect to Redis at {}", s.target), e)
            }),
            Err(_) => Err(LimiterError::new(format!(
                "cannot connect to Redis at {}: timed out",
                s.target
            ))),
        };
        match result {
            Ok(c) => {
                if conn.next_try.take().is_some() {
                    tracing::info!(target: "iot_sdk::limiter", redis = %s.target, "reconnected to Redis");
                }
                conn.live = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                conn.next_try = now.checked_add(s.reconnect_every);
                Err(e)
            }
        }
    }

    /// Forgets a connection that failed a command: the next decision reconnects.
    async fn drop_connection(&self) {
        self.inner.conn.lock().await.live = None;
    }

    async fn decide(
        &self,
        bucket: &PaceBucket,
        cost: u32,
    ) -> std::result::Result<Duration, LimiterError> {
        let s = &self.inner;
        let mut conn = self.connection().await?;
        let interval_us = bucket.per().as_secs_f64() * 1e6 / f64::from(bucket.limit().max(1));
        let mut call = s.script.prepare_invoke();
        call.key(self.key(bucket))
            .arg(interval_us)
            .arg(bucket.capacity() * interval_us)
            .arg(cost);
        match tokio::time::timeout(s.timeout, call.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(us)) => Ok(Duration::from_micros(u64::try_from(us).unwrap_or(0))),
            Ok(Err(e)) => {
                self.drop_connection().await;
                Err(LimiterError::with_source(
                    format!("the Redis at {} did not decide", s.target),
                    e,
                ))
            }
            Err(_) => {
                self.drop_connection().await;
                Err(LimiterError::new(format!(
                    "the Redis at {} did not decide within {} ms",
                    s.target,
                    s.timeout.as_millis()
                )))
            }
        }
    }
}

impl RedisLimiterBuilder {
    /// What a call does when Redis cannot decide (default: wait, asking every 250 ms, for up
    /// to 60 s; [`LimiterFallback::local`] paces in process at `1/workers` instead).
    pub fn fallback(mut self, fallback: LimiterFallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// How long connecting and one decision may take (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// After a failed connection attempt, how long decisions fail at once (to the fallback)
    /// before the next attempt (default 1 s).
    pub fn reconnect_every(mut self, every: Duration) -> Self {
        self.reconnect_every = every;
        self
    }

    /// The limiter. Connects lazily, at the first decision. `Err` ([`Error::Config`]) for a
    /// URL that is not a Redis URL or an empty namespace.
    pub fn build(self) -> Result<RedisLimiter> {
        if self.namespace.trim().is_empty() {
            return Err(Error::config("the Redis limiter's namespace is empty"));
        }
        // The parse error is not shown: it may quote the URL, password included.
        let client = Client::open(self.url.as_str()).map_err(|_| {
            Error::config("the Redis URL is not valid (redis://[:password@]host:port[/db])")
        })?;
        let target = client.get_connection_info().addr().to_string();
        Ok(RedisLimiter {
            inner: Arc::new(Shared {
                client,
                target,
                namespace: self.namespace,
                script: Script::new(SCRIPT),
                timeout: self.timeout,
                reconnect_every: self.reconnect_every,
                fallback: self.fallback,
                conn: tokio::sync::Mutex::new(Conn::default()),
            }),
        })
    }
}

impl Limiter for RedisLimiter {
    fn acquire<'a>(
        &'a self,
        bucket: &'a PaceBucket,
        cost: u32,
    ) -> BoxFuture<'a, std::result::Result<Duration, LimiterError>> {
        Box::pin(self.decide(bucket, cost))
    }

    fn fallback(&self) -> LimiterFallback {
        self.inner.fallback
    }
}
