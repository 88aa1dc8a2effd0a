//! Reports: asynchronous report runs, and waiting for them.
//!
//! | call | endpoint |
//! |---|---|
//! | [`Reports::create`] | `POST /reports` (answers 202 Accepted with the run and its expected completion time) |
//! | [`Reports::get`] | `GET /reports/{id}` (status; a signed download URL once ready) |
//! | [`Reports::list`] | `GET /reports` (recent runs; limit ≤ 500, cursor) |
//! | [`ReportRun::wait`], [`Reports::wait`] | polls `GET /reports/{id}` until the run is ready or failed |
//!
//! ```no_run
//! # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
//! use iot_sdk::sgt::NewReport;
//! let report = sgt.reports()
//!     .create(NewReport::new("energy_summary").format("pdf"))
//!     .await?
//!     .wait()
//!     .await?;
//! if let Some(url) = &report.download_url { println!("download: {}", url.expose()); }
//! # Ok(()) }
//! ```
//!
//! **Waiting.** The first poll is made near the run's `expected_completion_at` (never before
//! now, and at most [`DEFAULT_MAX_FIRST_WAIT`] away), later ones back off exponentially from
//! 1 s to 30 s with jitter. The wait ends with the report when it is `ready`, with an
//! [`Error::Api`] coded `report_failed` when it `failed`, and with a timeout
//! ([`Error::Transport`] of kind [`TransportErrorKind::Timeout`](crate::TransportErrorKind)) when
//! the deadline (default [`DEFAULT_WAIT_DEADLINE`]) passes first; the report keeps running on the
//! server, and [`Reports::wait`] picks the wait up again. The alternative the spec offers, the
//! `report.ready` webhook, needs no polling at all (see [`super::webhooks`]).
//!
//! The spec does not document the body of `POST /reports`: [`NewReport`] sends
//! `{"type": …, "parameters": …, "format": …}` and lets any other field be set with
//! [`NewReport::field`].

use std::future::IntoFuture;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Client, ReportId, SignedUrl, Wire};
use crate::List;
use crate::call::{Call, CallOptions};
use crate::envelope::Envelope;
use crate::error::{ApiError, Error, ErrorCode, RequestInfo, Result, TransportError};
use crate::transport::{Request, ResponseMeta, Transport};

/// How long [`WaitForReport`] polls before giving up, unless told otherwise: 15 minutes.
pub const DEFAULT_WAIT_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// The longest [`WaitForReport`] waits for the first poll, whatever `expected_completion_at`
/// says: 5 minutes (so a wildly pessimistic estimate does not hide an early failure).
pub const DEFAULT_MAX_FIRST_WAIT: Duration = Duration::from_secs(5 * 60);
/// The first delay between polls when no completion time applies: 1 s.
pub const DEFAULT_POLL_INITIAL: Duration = Duration::from_secs(1);
/// The longest delay between polls: 30 s.
pub const DEFAULT_POLL_MAX: Duration = Duration::from_secs(30);
/// The [`ErrorCode::Other`] of the error a failed report run ends a wait with.
pub const REPORT_FAILED: &str = "report_failed";

open_enum!(
    /// Where a report run is.
    ReportStatus {
        /// Accepted, not started.
        Queued => "queued",
        /// Being generated.
        Running => "running",
        /// Done: `download_url` is set.
        Ready => "ready",
        /// Gave up: `error` may say why.
        Failed => "failed",
    }
);

/// A report run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// `rpt_…`.
    pub id: ReportId,
    /// Where the run is.
    pub status: ReportStatus,
    /// The kind of report (`energy_summary`, …).
    #[serde(rename = "type", default)]
    pub report_type: Option<String>,
    /// When the server expects it to be ready.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub expected_completion_at: Option<DateTime<Utc>>,
    /// A signed, short-lived download URL, once ready.
    #[serde(default)]
    pub download_url: Option<SignedUrl>,
    /// When the run was requested.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub created_at: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Why it failed, as the server put it (a string or an object; the spec does not say).
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

impl Report {
    /// Whether the run is over (`ready` or `failed`).
    pub fn is_finished(&self) -> bool {
        matches!(self.status, ReportStatus::Ready | ReportStatus::Failed)
    }

    /// The server's reason for a failure as text: the `error` string, or the `message` (and
    /// `code`) of an `error` object, or the object itself as JSON.
    pub fn error_message(&self) -> Option<String> {
        use serde_json::Value;
        match self.error.as_ref()? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => {
                let text = |k: &str| o.get(k).and_then(Value::as_str);
                match (text("code"), text("message")) {
                    (Some(c), Some(m)) => Some(format!("{c}: {m}")),
                    (None, Some(m)) => Some(m.to_owned()),
                    _ => Some(Value::Object(o.clone()).to_string()),
                }
            }
            other => Some(other.to_string()),
        }
    }
}

/// A report to run: its type, and optionally parameters, a format and any other field.
///
/// Serializes as one JSON object; each setter sets one top-level field (the last write wins).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct NewReport {
    body: serde_json::Map<String, serde_json::Value>,
}

impl NewReport {
    /// A report of this type (`energy_summary`, `alarm_history`, …), sent as `type`.
    pub fn new(report_type: impl Into<String>) -> Self {
        let mut body = serde_json::Map::new();
        body.insert("type".into(), report_type.into().into());
        NewReport { body }
    }

    /// The report's parameters (a time range, devices, …), sent as `parameters`.
    #[must_use]
    pub fn parameters(self, parameters: serde_json::Value) -> Self {
        self.field("parameters", parameters)
    }

    /// The output format (`pdf`, `csv`, …), sent as `format`.
    #[must_use]
    pub fn format(self, format: impl Into<String>) -> Self {
        self.field("format", format.into())
    }

    /// Any other top-level field the API accepts.
    #[must_use]
    pub fn field(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.body.insert(name.into(), value.into());
        self
    }
}

/// The reports of a client. Get one from [`Client::reports`].
#[derive(Debug, Clone)]
pub struct Reports {
    client: Client,
}

impl Reports {
    pub(crate) fn new(client: Client) -> Self {
        Reports { client }
    }

    fn transport(&self) -> Transport {
        self.client.transport.clone()
    }

    /// Triggers a report run (`202 Accepted`). The [`ReportRun`] it returns holds the run and
    /// can [`wait`](ReportRun::wait) for it. Counts against the `reports` rate-limit bucket
    /// (30 an hour).
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use iot_sdk::sgt::NewReport;
    /// let run = sgt.reports()
    ///     .create(NewReport::new("energy_summary")
    ///         .parameters(serde_json::json!({"site": "site_dhaka_wh1", "month": "2026-05"})))
    ///     .await?;
    /// println!("{} expected at {:?}", run.id(), run.report().expected_completion_at);
    /// # Ok(()) }
    /// ```
    pub fn create(&self, report: NewReport) -> CreateReport {
        CreateReport {
            reports: self.clone(),
            report,
            opts: CallOptions::default(),
        }
    }

    /// Reads a report run: its status and, once ready, its download URL.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// let r = sgt.reports().get("rpt_01HW3K9F2XV7W8").await?;
    /// println!("{}", r.status);
    /// # Ok(()) }
    /// ```
    pub fn get(&self, id: impl Into<ReportId>) -> Call<Report> {
        let id = id.into();
        let req = Ok(Request::new(Method::GET, segments!["reports", id]));
        Call::new(self.transport(), req, Wire::call)
    }

    /// Lists the tenant's recent runs; `.send()` for one page, `.pages()` or `.items()` to stream.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// let page = sgt.reports().list().limit(20).send().await?;
    /// for r in page.items() {
    ///     println!("{} {}", r.id, r.status);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> List<Report, ()> {
        self.client.list(&["reports"], ())
    }

    /// Waits for a run started earlier (or by someone else): polls it at once, then as described
    /// in the [module docs](self).
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use std::time::Duration;
    /// let report = sgt.reports()
    ///     .wait("rpt_01HW3K9F2XV7W8")
    ///     .deadline(Duration::from_secs(5 * 60))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn wait(&self, id: impl Into<ReportId>) -> WaitForReport {
        WaitForReport::new(self.clone(), id.into(), None)
    }
}

/// `POST /reports`.
#[derive(Debug)]
#[must_use = "a report run is not requested until sent or awaited"]
pub struct CreateReport {
    reports: Reports,
    report: NewReport,
    opts: CallOptions,
}

impl CreateReport {
    call_options!();

    /// Requests the run.
    pub async fn send(self) -> Result<ReportRun> {
        let req = Request::new(Method::POST, segments!["reports"]).json(&self.report);
        let mut call: Call<Report> = Call::new(self.reports.transport(), req, Wire::call);
        if let Some(p) = self.opts.retry {
            call = call.with_retry_policy(p);
        }
        if let Some(t) = self.opts.timeout {
            call = call.with_timeout(t);
        }
        let (report, meta) = call.send_with_meta().await?;
        Ok(ReportRun {
            report,
            meta,
            reports: self.reports,
        })
    }
}

impl IntoFuture for CreateReport {
    type Output = Result<ReportRun>;
    type IntoFuture = BoxFuture<'static, Result<ReportRun>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A report run the server accepted, with what it said about it and a way to wait for it.
#[derive(Debug, Clone)]
pub struct ReportRun {
    report: Report,
    meta: ResponseMeta,
    reports: Reports,
}

impl ReportRun {
    /// The run's id.
    pub fn id(&self) -> &ReportId {
        &self.report.id
    }

    /// The run as the server described it when it accepted it.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The metadata of the `202` response (request id, rate limit).
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// Takes the run as the server described it when it accepted it.
    pub fn into_report(self) -> Report {
        self.report
    }

    /// Waits until the run is ready (or failed, or the deadline passes), polling as described
    /// in the [module docs](self). A run that was already finished when accepted is returned
    /// without a request.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use std::time::Duration;
    /// use iot_sdk::sgt::NewReport;
    /// let run = sgt.reports().create(NewReport::new("alarm_history")).await?;
    /// match run.wait().deadline(Duration::from_secs(120)).await {
    ///     Ok(report) => println!("{:?}", report.download_url),
    ///     Err(e) => eprintln!("no report: {e}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn wait(self) -> WaitForReport {
        let id = self.report.id.clone();
        WaitForReport::new(self.reports, id, Some((self.report, self.meta)))
    }
}

/// Polls a report run until it is ready. Made by [`ReportRun::wait`] and [`Reports::wait`];
/// `.await` it (or call `.send()`).
#[derive(Debug)]
#[must_use = "nothing is polled until the wait is awaited"]
pub struct WaitForReport {
    reports: Reports,
    id: ReportId,
    known: Option<(Report, ResponseMeta)>,
    deadline: Duration,
    max_first_wait: Duration,
    initial: Duration,
    max: Duration,
    opts: CallOptions,
}

impl WaitForReport {
    fn new(reports: Reports, id: ReportId, known: Option<(Report, ResponseMeta)>) -> Self {
        WaitForReport {
            reports,
            id,
            known,
            deadline: DEFAULT_WAIT_DEADLINE,
            max_first_wait: DEFAULT_MAX_FIRST_WAIT,
            initial: DEFAULT_POLL_INITIAL,
            max: DEFAULT_POLL_MAX,
            opts: CallOptions::default(),
        }
    }

    /// How long to wait in all (default 15 minutes). When it passes, one last poll is made and,
    /// if the run is still not finished, the wait ends with a timeout error that names the
    /// report and its last status.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The longest wait before the first poll when `expected_completion_at` is far ahead
    /// (default 5 minutes).
    pub fn max_first_wait(mut self, wait: Duration) -> Self {
        self.max_first_wait = wait;
        self
    }

    /// The delays between polls: `initial` doubling up to `max`, each with jitter (between half
    /// and all of it). Defaults 1 s and 30 s.
    pub fn poll_interval(mut self, initial: Duration, max: Duration) -> Self {
        self.initial = initial;
        self.max = max.max(initial);
        self
    }

    call_options!();

    /// Polls until the run is ready, failed, or the deadline passes.
    pub async fn send(self) -> Result<Report> {
        let WaitForReport {
            reports,
            id,
            known,
            deadline,
            max_first_wait,
            initial,
            max,
            opts,
        } = self;
        // `None`: a deadline too far away to represent, i.e. none.
        let deadline_at = tokio::time::Instant::now().checked_add(deadline);
        let mut backoff = Backoff::new(initial, max);
        let mut delay = Duration::ZERO;
        let mut seen_one = false;
        if let Some((report, meta)) = known {
            if let Some(done) = finished(report.clone(), &meta) {
                return done;
            }
            delay = first_delay(&report, Utc::now(), max_first_wait, &mut backoff);
            seen_one = true;
        }
        let mut polls: u32 = 0;
        loop {
            let remaining = deadline_at.map_or(delay, |d| {
                d.saturating_duration_since(tokio::time::Instant::now())
            });
            tokio::time::sleep(delay.min(remaining)).await;

            let mut call = reports.get(&id);
            if let Some(p) = opts.retry.clone() {
                call = call.with_retry_policy(p);
            }
            if let Some(t) = opts.timeout {
                call = call.with_timeout(t);
            }
            let (report, meta) = call.send_with_meta().await?;
            polls = polls.saturating_add(1);
            tracing::debug!(report = %id, status = %report.status, polls, "polled a report run");
            if let Some(done) = finished(report.clone(), &meta) {
                return done;
            }
            if deadline_at.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(deadline_passed(&id, &report, &meta, deadline, polls));
            }
            delay = if seen_one {
                backoff.next_delay()
            } else {
                seen_one = true;
                first_delay(&report, Utc::now(), max_first_wait, &mut backoff)
            };
        }
    }
}

impl IntoFuture for WaitForReport {
    type Output = Result<Report>;
    type IntoFuture = BoxFuture<'static, Result<Report>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// `Some` when the run is over: the report when ready, the failure as an error.
fn finished(report: Report, meta: &ResponseMeta) -> Option<Result<Report>> {
    match report.status {
        ReportStatus::Ready => Some(Ok(report)),
        ReportStatus::Failed => Some(Err(report_failed(&report, meta))),
        _ => None,
    }
}

fn report_failed(report: &Report, meta: &ResponseMeta) -> Error {
    let reason = report
        .error_message()
        .unwrap_or_else(|| "the server gave no reason".to_owned());
    ApiError {
        status: meta.status,
        code: ErrorCode::Other(REPORT_FAILED.to_owned()),
        vendor_code: None,
        message: format!("report {} failed: {reason}", report.id),
        details: report.error.clone(),
        request_id: meta.request_id.clone(),
        retry_after: None,
        rate_limit: meta.rate_limit.clone(),
        request: request_of(meta, &report.id),
        body_snippet: None,
        attempts: meta.attempts,
    }
    .into()
}

fn deadline_passed(
    id: &ReportId,
    report: &Report,
    meta: &ResponseMeta,
    deadline: Duration,
    polls: u32,
) -> Error {
    TransportError {
        kind: crate::error::TransportErrorKind::Timeout,
        request: request_of(meta, id),
        attempts: polls,
        message: format!(
            "report {id} was still `{}` when the {deadline:?} deadline to wait for it passed; \
             it may still complete: wait again with reports().wait(id)",
            report.status
        ),
        source: None,
    }
    .into()
}

fn request_of(meta: &ResponseMeta, id: &ReportId) -> RequestInfo {
    meta.request
        .clone()
        .unwrap_or_else(|| RequestInfo::new("GET", format!("/reports/{id}")))
}

/// The wait before the first poll: until `expected_completion_at` when it is ahead (capped),
/// otherwise the first backoff delay.
fn first_delay(
    report: &Report,
    now: DateTime<Utc>,
    cap: Duration,
    backoff: &mut Backoff,
) -> Duration {
    match report.expected_completion_at {
        Some(at) if at > now => at
            .signed_duration_since(now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(cap),
        _ => backoff.next_delay(),
    }
}

/// Exponential delays with "equal jitter": each between half and all of the nominal delay.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Backoff { next: initial, max }
    }

    fn next_delay(&mut self) -> Duration {
        let nominal = self.next.min(self.max);
        self.next = nominal.saturating_mul(2).min(self.max);
        let half = nominal.checked_div(2).unwrap_or(Duration::ZERO);
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half.saturating_add(Duration::from_nanos(fastrand::u64(0..=nanos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(expected: Option<DateTime<Utc>>) -> Report {
        Report {
            id: "rpt_1".into(),
            status: ReportStatus::Queued,
            report_type: None,
            expected_completion_at: expected,
            download_url: None,
            created_at: None,
            completed_at: None,
            error: None,
        }
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let nominal = [1u64, 2, 4, 8, 16, 30, 30, 30];
        for n in nominal {
            let d = b.next_delay();
            let n = Duration::from_secs(n);
            assert!(d >= n / 2 && d <= n, "{d:?} not in [{:?}, {n:?}]", n / 2);
        }
        let mut zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.next_delay(), Duration::ZERO);
    }

    #[test]
    fn first_poll_near_the_expected_completion_never_before_now_and_capped() {
        let now: DateTime<Utc> = "2026-05-24T10:35:00Z".parse().unwrap();
        let cap = Duration::from_secs(300);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let in_5 = report(Some("2026-05-24T10:40:00Z".parse().unwrap()));
        assert_eq!(
            first_delay(&in_5, now, cap, &mut b),
            Duration::from_secs(300)
        );
        let in_20s = report(Some("2026-05-24T10:35:20Z".parse().unwrap()));
        assert_eq!(
            first_delay(&in_20s, now, cap, &mut b),
            Duration::from_secs(20)
        );
        let in_2h = report(Some("2026-05-24T12:35:00Z".parse().unwrap()));
        assert_eq!(first_delay(&in_2h, now, cap, &mut b), cap);
        // In the past, or unknown: the first backoff delay (0.5 to 1 s), not a burst at once.
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let past = report(Some("2026-05-24T10:00:00Z".parse().unwrap()));
        let d = first_delay(&past, now, cap, &mut b);
        assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
        let d = first_delay(&report(None), now, cap, &mut b);
        assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(2));
    }

    #[test]
    fn failure_reasons_as_text() {
        let mut r = report(None);
        assert_eq!(r.error_message(), None);
        r.error = Some(serde_json::json!("no data in range"));
        assert_eq!(r.error_message().as_deref(), Some("no data in range"));
        r.error = Some(serde_json::json!({"code": "no_data", "message": "empty"}));
        assert_eq!(r.error_message().as_deref(), Some("no_data: empty"));
        r.error = Some(serde_json::json!({"reason": 3}));
        assert_eq!(r.error_message().as_deref(), Some(r#"{"reason":3}"#));
    }

    #[test]
    fn new_report_body() {
        let r = NewReport::new("energy_summary")
            .parameters(serde_json::json!({"month": "2026-05"}))
            .format("pdf")
            .field("locale", "en-GB");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({
                "type": "energy_summary",
                "parameters": {"month": "2026-05"},
                "format": "pdf",
                "locale": "en-GB"
            })
        );
    }
}
