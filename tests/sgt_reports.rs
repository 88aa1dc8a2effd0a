//! SGT reports: the exact request of every endpoint, decoding of the fixtures, and waiting for a
//! run (polls, timing, failure, deadline) against a scripted server with tiny delays.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::sgt::{setup, sgt_headers};
use common::*;
use futures::TryStreamExt;
use iot_sdk::sgt::{NewReport, ReportStatus};
use iot_sdk::{Error, ErrorCode, TransportErrorKind};
use serde_json::{Value, json};
use wiremock::matchers::{body_json as body_is, header, method, path, query_param};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

const ID: &str = "rpt_01HW3K9F2XV7W8";

/// A report run in `status`, as `GET /reports/{id}` would answer.
fn run(status: &str, expected: Option<DateTime<Utc>>) -> Value {
    let mut data = fixture("sgt", "reports_create")["data"].clone();
    data["status"] = json!(status);
    data["expected_completion_at"] = json!(expected);
    if status == "ready" {
        data["download_url"] = fixture("sgt", "reports_get")["data"]["download_url"].clone();
    }
    json!({"data": data, "meta": {"request_id": format!("req_{status}")}})
}

/// Answers with the scripted bodies in order (repeating the last), noting when each request
/// arrived.
#[derive(Clone)]
struct Script {
    bodies: Vec<Value>,
    seen: Arc<Mutex<Vec<DateTime<Utc>>>>,
}

impl Script {
    fn new(bodies: Vec<Value>) -> Self {
        Script {
            bodies,
            seen: Arc::default(),
        }
    }

    fn times(&self) -> Vec<DateTime<Utc>> {
        self.seen.lock().unwrap().clone()
    }
}

impl Respond for Script {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let mut seen = self.seen.lock().unwrap();
        seen.push(Utc::now());
        let i = (seen.len() - 1).min(self.bodies.len() - 1);
        ResponseTemplate::new(200).set_body_json(self.bodies[i].clone())
    }
}

async fn mount_create(server: &MockServer, body: Value) {
    Mock::given(method("POST"))
        .and(path("/v1/reports"))
        .respond_with(ResponseTemplate::new(202).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

async fn mount_polls(server: &MockServer, script: &Script) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/reports/{ID}").as_str()))
        .respond_with(script.clone())
        .mount(server)
        .await;
}

fn fast(initial_ms: u64, max_ms: u64) -> (Duration, Duration) {
    (
        Duration::from_millis(initial_ms),
        Duration::from_millis(max_ms),
    )
}

#[tokio::test]
async fn create_posts_the_body_and_answers_202() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("POST")).and(path("/v1/reports")))
        .and(header("content-type", "application/json"))
        .and(body_is(json!({
            "type": "energy_summary",
            "parameters": {"site": "site_dhaka_wh1", "month": "2026-05"},
            "format": "pdf",
            "locale": "en-GB"
        })))
        .respond_with(ResponseTemplate::new(202).set_body_json(fixture("sgt", "reports_create")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let run = sgt
        .reports()
        .create(
            NewReport::new("energy_summary")
                .parameters(json!({"site": "site_dhaka_wh1", "month": "2026-05"}))
                .format("pdf")
                .field("locale", "en-GB"),
        )
        .await
        .unwrap();
    assert_eq!(run.id(), ID);
    assert_eq!(run.meta().status, 202);
    assert_eq!(run.meta().request_id.as_deref(), Some("req_01HW3K9F2XRNS6"));
    let r = run.report();
    assert_eq!(r.status, ReportStatus::Queued);
    assert_eq!(r.report_type.as_deref(), Some("energy_summary"));
    assert_eq!(
        r.expected_completion_at.unwrap(),
        "2026-05-24T10:40:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(r.download_url, None);
    assert!(!r.is_finished());
}

#[tokio::test]
async fn get_returns_status_and_the_signed_url() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("GET")).and(path(format!("/v1/reports/{ID}").as_str())))
        .respond_with(ok_fixture("sgt", "reports_get"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let r = sgt.reports().get(ID).await.unwrap();
    assert_eq!(r.status, ReportStatus::Ready);
    assert!(
        r.download_url
            .as_ref()
            .unwrap()
            .expose()
            .starts_with("https://reports.sgtsystems.com/acme-industries/rpt_01HW3K9F2XV7W8.pdf?")
    );
    assert!(r.is_finished());
    assert_eq!(only_request(&server).await.url.query(), None);
}

#[tokio::test]
async fn list_sends_limit_and_cursor_and_ends_on_the_last_page() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("GET")).and(path("/v1/reports")))
        .and(query_param("limit", "50"))
        .and(query_param("cursor", "c1"))
        .respond_with(ok_fixture("sgt", "reports_list"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let all: Vec<_> = sgt
        .reports()
        .list()
        .limit(50)
        .cursor("c1")
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        only_request(&server).await.url.query(),
        Some("limit=50&cursor=c1")
    );
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].status, ReportStatus::Ready);
    assert_eq!(all[1].status, ReportStatus::Running);
    assert_eq!(all[1].report_type.as_deref(), Some("alarm_history"));
}

#[tokio::test]
async fn bad_input_is_refused_before_sending() {
    let (server, sgt) = setup().await;
    catch_all(&server).await;
    assert!(matches!(
        sgt.reports().list().limit(501).send().await,
        Err(Error::InvalidInput(_))
    ));
    for id in ["", ".", ".."] {
        assert!(matches!(
            sgt.reports().get(id).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            sgt.reports().wait(id).await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_report_is_a_not_found() {
    let (server, sgt) = setup().await;
    Mock::given(path("/v1/reports/rpt_404"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
            "code": "not_found", "message": "No report 'rpt_404'.", "request_id": "req_x"
        }})))
        .expect(2)
        .mount(&server)
        .await;
    let err = sgt.reports().get("rpt_404").await.unwrap_err();
    assert!(err.is_not_found());
    // Waiting for a report that does not exist ends at the first poll.
    let err = sgt.reports().wait("rpt_404").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn wait_polls_queued_running_ready_and_returns_the_download_url() {
    let (server, sgt) = setup().await;
    mount_create(&server, fixture("sgt", "reports_create")).await;
    let script = Script::new(vec![
        run("queued", None),
        run("running", None),
        run("running", None),
        run("ready", None),
    ]);
    mount_polls(&server, &script).await;
    catch_all(&server).await;
    // The fixture's expected completion (2026-05-24T10:40Z) is in the past by now: polling
    // starts after the first backoff delay.
    let (initial, max) = fast(10, 40);
    let report = sgt
        .reports()
        .create(NewReport::new("energy_summary"))
        .await
        .unwrap()
        .wait()
        .poll_interval(initial, max)
        .await
        .unwrap();
    assert_eq!(report.status, ReportStatus::Ready);
    let url = report.download_url.unwrap();
    assert!(url.expose().contains("X-Amz-Signature"));
    // Debug leaves the signature out.
    assert!(!format!("{url:?}").contains("X-Amz-Signature"), "{url:?}");
    let times = script.times();
    assert_eq!(times.len(), 4, "one poll per scripted state");
    // Backoff between polls: at least half the nominal 10, 20, 40 ms.
    for (gap, nominal) in times.windows(2).map(|w| w[1] - w[0]).zip([10, 20, 40]) {
        assert!(
            gap >= chrono::TimeDelta::milliseconds(nominal / 2),
            "{gap:?} < {nominal}/2 ms"
        );
    }
}

#[tokio::test]
async fn the_first_poll_waits_for_the_expected_completion_time() {
    let (server, sgt) = setup().await;
    let expected = Utc::now() + chrono::TimeDelta::milliseconds(400);
    mount_create(&server, run("queued", Some(expected))).await;
    let script = Script::new(vec![run("ready", Some(expected))]);
    mount_polls(&server, &script).await;
    let (initial, max) = fast(10, 40);
    let report = sgt
        .reports()
        .create(NewReport::new("energy_summary"))
        .await
        .unwrap()
        .wait()
        .poll_interval(initial, max)
        .await
        .unwrap();
    assert_eq!(report.status, ReportStatus::Ready);
    let times = script.times();
    assert_eq!(times.len(), 1, "ready at the first poll");
    assert!(
        times[0] >= expected,
        "polled at {} before the expected completion {expected}",
        times[0]
    );
    assert!(
        times[0] < expected + chrono::TimeDelta::seconds(2),
        "but near it"
    );
}

#[tokio::test]
async fn a_far_expected_completion_is_capped_by_max_first_wait() {
    let (server, sgt) = setup().await;
    let expected = Utc::now() + chrono::TimeDelta::hours(2);
    mount_create(&server, run("queued", Some(expected))).await;
    let script = Script::new(vec![run("ready", Some(expected))]);
    mount_polls(&server, &script).await;
    let started = std::time::Instant::now();
    sgt.reports()
        .create(NewReport::new("energy_summary"))
        .await
        .unwrap()
        .wait()
        .max_first_wait(Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(script.times().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn huge_settings_do_not_overflow() {
    let (server, sgt) = setup().await;
    let script = Script::new(vec![run("running", None), run("ready", None)]);
    mount_polls(&server, &script).await;
    let report = sgt
        .reports()
        .wait(ID)
        .deadline(Duration::MAX)
        .max_first_wait(Duration::MAX)
        .poll_interval(Duration::from_millis(5), Duration::MAX)
        .await
        .unwrap();
    assert_eq!(report.status, ReportStatus::Ready);
    assert_eq!(script.times().len(), 2);
}

#[tokio::test]
async fn a_failed_run_is_an_api_error_naming_the_report_and_the_reason() {
    let (server, sgt) = setup().await;
    let mut failed = run("failed", None);
    failed["data"]["error"] = json!({"code": "no_data", "message": "No telemetry in range."});
    let script = Script::new(vec![run("running", None), failed]);
    mount_polls(&server, &script).await;
    let (initial, max) = fast(5, 10);
    let err = sgt
        .reports()
        .wait(ID)
        .poll_interval(initial, max)
        .await
        .unwrap_err();
    assert_eq!(script.times().len(), 2);
    let api = err.api().expect("an API error");
    assert_eq!(api.code(), &ErrorCode::Other("report_failed".into()));
    assert_eq!(api.details().unwrap()["code"], "no_data");
    assert_eq!(api.request_id(), Some("req_failed"));
    let text = err.to_string();
    assert!(text.contains(ID), "{text}");
    assert!(text.contains("no_data: No telemetry in range."), "{text}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_run_that_failed_at_once_is_returned_without_polling() {
    let (server, sgt) = setup().await;
    let mut failed = run("failed", None);
    failed["data"]["error"] = json!("unknown report type");
    mount_create(&server, failed).await;
    catch_all(&server).await;
    let err = sgt
        .reports()
        .create(NewReport::new("nope"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown report type"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_deadline_ends_the_wait_with_the_last_status() {
    let (server, sgt) = setup().await;
    let script = Script::new(vec![run("queued", None), run("running", None)]);
    mount_polls(&server, &script).await;
    let (initial, max) = fast(20, 40);
    let started = std::time::Instant::now();
    let err = sgt
        .reports()
        .wait(ID)
        .poll_interval(initial, max)
        .deadline(Duration::from_millis(200))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let Error::Transport(t) = &err else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!(t.kind(), TransportErrorKind::Timeout);
    let text = err.to_string();
    assert!(text.contains(ID) && text.contains("`running`"), "{text}");
    let polls = script.times().len();
    assert!((3..=15).contains(&polls), "{polls} polls");
    assert_eq!(t.attempts() as usize, polls);
}
