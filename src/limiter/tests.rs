//! The pacer and the in-process limiter (moved from `rate_limit.rs`), the fallbacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use proptest::prelude::*;

use super::*;
use crate::rate_limit::ARRIVAL_MARGIN;

fn bucket(limit: u32, per_ms: u64, burst: u32) -> Pacer {
    Pacer::new(
        &[PaceBucket::new(
            "b",
            limit,
            Duration::from_millis(per_ms),
            burst,
        )],
        Arc::new(LocalLimiter::new()),
    )
}

#[tokio::test(start_paused = true)]
async fn pacer_lets_a_burst_through_then_paces() {
    // 10 per second (one every 100 ms), burst 3.
    let p = bucket(10, 1000, 3);
    let start = tokio::time::Instant::now();
    // The burst less the arrival margin (20 ms: 0.2 tokens): the third call waits 20 ms.
    for _ in 0..3 {
        p.acquire("b", 1).await.unwrap();
    }
    assert_eq!(start.elapsed(), ARRIVAL_MARGIN);
    for i in 1..=5u64 {
        p.acquire("b", 1).await.unwrap();
        let e = start.elapsed().as_millis();
        assert!(
            (e as i128 - 20 - (i as i128) * 100).abs() <= 1,
            "{i}: {e} ms"
        );
    }
    // An unknown bucket never waits.
    p.acquire("other", 1_000_000).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(530));
}

#[tokio::test(start_paused = true)]
async fn pacer_refills_while_idle_up_to_the_burst() {
    let p = bucket(10, 1000, 2);
    p.acquire("b", 2).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let start = tokio::time::Instant::now();
    p.acquire("b", 2).await.unwrap(); // refilled, but only to the burst less the margin
    assert_eq!(start.elapsed(), ARRIVAL_MARGIN);
    p.acquire("b", 1).await.unwrap();
    assert_eq!(start.elapsed().as_millis(), 120);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_queue_in_order() {
    let p = Arc::new(bucket(10, 1000, 1));
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                p.acquire("b", 1).await.unwrap();
                start.elapsed().as_millis()
            })
        })
        .collect();
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    done.sort();
    assert_eq!(done, vec![20, 120, 220, 320, 420]);
}

#[tokio::test(start_paused = true)]
async fn the_servers_remaining_count_lowers_the_bucket() {
    // 10 a second, burst 100: locally there is plenty left...
    let p = bucket(10, 1000, 100);
    p.acquire("b", 1).await.unwrap();
    // ...but another process using the same key left only 2.
    let rl = RateLimit {
        remaining: Some(2),
        reset_after: Some(Duration::from_secs(60)),
        ..RateLimit::default()
    };
    p.observe("b", &rl);
    let start = tokio::time::Instant::now();
    p.acquire("b", 1).await.unwrap();
    p.acquire("b", 1).await.unwrap();
    // The server's 2 less the arrival margin's 0.2 tokens.
    assert_eq!(start.elapsed(), ARRIVAL_MARGIN);
    // Then one every 100 ms, not a wait for the minute-long reset.
    p.acquire("b", 1).await.unwrap();
    assert_eq!(start.elapsed().as_millis(), 120);
    // A server count above the local one changes nothing; no header, nothing either.
    p.observe(
        "b",
        &RateLimit {
            remaining: Some(50),
            ..RateLimit::default()
        },
    );
    p.observe("b", &RateLimit::default());
    p.acquire("b", 1).await.unwrap();
    assert_eq!(start.elapsed().as_millis(), 220);
}

/// A limiter that cannot decide for its first `failures` questions, then lets everything go.
#[derive(Debug)]
struct Flaky {
    failures: AtomicU32,
    asked: AtomicU32,
    fallback: LimiterFallback,
}

impl Flaky {
    fn new(failures: u32, fallback: LimiterFallback) -> Arc<Self> {
        Arc::new(Flaky {
            failures: AtomicU32::new(failures),
            asked: AtomicU32::new(0),
            fallback,
        })
    }
}

impl Limiter for Flaky {
    fn acquire<'a>(
        &'a self,
        _bucket: &'a PaceBucket,
        _cost: u32,
    ) -> BoxFuture<'a, std::result::Result<Duration, LimiterError>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Box::pin(async move {
            if failing {
                Err(LimiterError::new("store unreachable"))
            } else {
                Ok(Duration::ZERO)
            }
        })
    }

    fn fallback(&self) -> LimiterFallback {
        self.fallback
    }
}

/// Captures the `tracing` output of the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let c = Captured::default();
        let w = c.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        (c, tracing::subscriber::set_default(sub))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn read_bucket() -> PaceBucket {
    // 40 a second, burst 8; divided by 4 workers: 10 a second, burst 2.
    PaceBucket::new("read", 40, Duration::from_secs(1), 8)
}

#[tokio::test(start_paused = true)]
async fn local_fallback_paces_at_the_workers_share_from_empty_and_says_so_once() {
    let (logs, _guard) = Captured::start();
    let flaky = Flaky::new(5, LimiterFallback::local(4));
    let p = Pacer::new(&[read_bucket()], flaky.clone());
    let start = tokio::time::Instant::now();
    for _ in 0..5 {
        p.acquire("read", 1).await.unwrap();
    }
    // Empty at the outage, then 10 a second: 100, 200, …, 500 ms.
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    // The limiter is back: its answer (no wait) counts again.
    let back = tokio::time::Instant::now();
    for _ in 0..20 {
        p.acquire("read", 1).await.unwrap();
    }
    assert_eq!(back.elapsed(), Duration::ZERO);
    assert_eq!(flaky.asked.load(Ordering::SeqCst), 25);
    let text = logs.text();
    assert_eq!(text.matches("WARN").count(), 1, "{text}");
    assert!(
        text.contains("pacing in process at 1/4 of each bucket")
            && text.contains("store unreachable"),
        "{text}"
    );
    assert_eq!(text.matches("decides again").count(), 1, "{text}");
}

#[tokio::test(start_paused = true)]
async fn the_local_fallback_starts_empty_at_every_outage() {
    let flaky = Flaky::new(1, LimiterFallback::local(4));
    let p = Pacer::new(&[read_bucket()], flaky.clone());
    p.acquire("read", 1).await.unwrap(); // outage 1: waits 100 ms
    p.acquire("read", 1).await.unwrap(); // back
    tokio::time::sleep(Duration::from_secs(60)).await; // the fallback bucket would refill...
    flaky.failures.store(1, Ordering::SeqCst);
    let start = tokio::time::Instant::now();
    p.acquire("read", 1).await.unwrap(); // ...but outage 2 starts it empty again
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn wait_fallback_asks_again_until_the_limiter_answers() {
    let (logs, _guard) = Captured::start();
    let every = Duration::from_millis(250);
    let flaky = Flaky::new(3, LimiterFallback::wait(every, Duration::from_secs(10)));
    let p = Pacer::new(&[read_bucket()], flaky.clone());
    let start = tokio::time::Instant::now();
    p.acquire("read", 1).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(750));
    assert_eq!(flaky.asked.load(Ordering::SeqCst), 4);
    let text = logs.text();
    assert_eq!(text.matches("calls wait for it").count(), 1, "{text}");
}

#[tokio::test(start_paused = true)]
async fn wait_fallback_gives_up_with_an_error_instead_of_hanging() {
    let flaky = Flaky::new(
        u32::MAX,
        LimiterFallback::wait(Duration::from_millis(300), Duration::from_secs(1)),
    );
    let p = Pacer::new(&[read_bucket()], flaky.clone());
    let start = tokio::time::Instant::now();
    let err = p.acquire("read", 1).await.unwrap_err();
    // 300 + 300 + 300 + 100 ms, then one last question that fails too.
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(flaky.asked.load(Ordering::SeqCst), 5);
    assert!(matches!(err, Error::Limiter(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("`read` bucket") && text.contains("store unreachable"),
        "{text}"
    );
    assert!(!err.is_retryable());
    // A zero pause is not a busy loop: at least 10 ms between questions.
    let flaky = Flaky::new(
        u32::MAX,
        LimiterFallback::wait(Duration::ZERO, Duration::from_millis(100)),
    );
    let p = Pacer::new(&[read_bucket()], flaky.clone());
    p.acquire("read", 1).await.unwrap_err();
    assert_eq!(flaky.asked.load(Ordering::SeqCst), 11);
}

#[tokio::test(start_paused = true)]
async fn one_local_limiter_shared_by_two_pacers_is_one_budget() {
    let shared = Arc::new(LocalLimiter::new());
    let b = PaceBucket::new("b", 10, Duration::from_secs(1), 2);
    let (p, q) = (
        Pacer::new(&[b], shared.clone()),
        Pacer::new(&[b], shared.clone()),
    );
    let start = tokio::time::Instant::now();
    p.acquire("b", 1).await.unwrap();
    q.acquire("b", 1).await.unwrap();
    assert_eq!(start.elapsed(), ARRIVAL_MARGIN);
    q.acquire("b", 1).await.unwrap();
    p.acquire("b", 1).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(220));
}

#[test]
fn divided_buckets_never_exceed_the_whole() {
    let b = PaceBucket::new("read", 600, Duration::from_secs(60), 120);
    let d = b.divided(7);
    assert_eq!(
        (d.limit(), d.burst(), d.per(), d.name()),
        (85, 17, b.per(), "read")
    );
    assert_eq!(b.divided(0), b);
    let tiny = PaceBucket::new("reports", 3, Duration::from_secs(3600), 1).divided(4);
    assert_eq!((tiny.limit(), tiny.burst()), (1, 1));
}

proptest! {
    /// Whatever the costs, gaps and bucket (zero limits and windows included), deciding never
    /// panics, and the units let through by time `t` never exceed `burst + rate × t`.
    #[test]
    fn local_decisions_never_let_more_than_burst_plus_rate(
        limit in 0u32..5_000,
        per_ms in 0u64..120_000,
        burst in 0u32..500,
        calls in prop::collection::vec((0u32..50, 0u64..2_000), 1..60),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let b = PaceBucket::new("b", limit, Duration::from_millis(per_ms), burst);
            let l = LocalLimiter::new();
            let start = tokio::time::Instant::now();
            let mut sent = 0f64;
            for (cost, gap_ms) in calls {
                tokio::time::sleep(Duration::from_millis(gap_ms)).await;
                let wait = l.decide(&b, cost);
                sent += f64::from(cost);
                // A huge wait (a zero limit) is clamped to Duration::MAX: then nothing goes (and
                // adding it to the elapsed time would overflow).
                if wait < Duration::from_secs(1 << 40) {
                    let t = (tokio::time::Instant::now() - start + wait).as_secs_f64();
                    let allowed = f64::from(burst.max(1)) + b.rate_per_sec() * t;
                    prop_assert!(sent <= allowed + 1e-6, "{sent} > {allowed}");
                }
            }
            Ok(())
        })?;
    }
}

#[tokio::test(start_paused = true)]
async fn the_servers_word_during_an_outage_refills_only_the_workers_share() {
    // The limiter stays down; responses keep saying 5 are left. Each worker's share of 40/s is
    // 10/s: one call every 100 ms, however the responses read.
    let flaky = Flaky::new(u32::MAX, LimiterFallback::local(4));
    let p = Pacer::new(&[read_bucket()], flaky);
    let rl = RateLimit {
        remaining: Some(5),
        ..RateLimit::default()
    };
    let start = tokio::time::Instant::now();
    for i in 1..=10u32 {
        p.acquire("read", 1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await; // the response's latency
        p.observe("read", &rl);
        assert!(
            start.elapsed() >= Duration::from_millis(u64::from(i) * 100),
            "call {i} at {:?}",
            start.elapsed()
        );
    }
}
