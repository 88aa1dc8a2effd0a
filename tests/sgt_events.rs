//! SGT events and alarms: the exact request of every endpoint, decoding of the fixtures, input
//! checks, and which calls are retried.

mod common;

use common::sgt::{setup, sgt_headers};
use common::*;
use futures::TryStreamExt;
use iot_sdk::Error;
use iot_sdk::sgt::Severity;
use serde_json::json;
use wiremock::matchers::{body_json as body_is, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn list_sends_every_filter_and_decodes_the_page() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("GET")).and(path("/v1/events")))
        .and(query_param("type", "alarm"))
        .and(query_param("severity", "critical"))
        .and(query_param("acknowledged", "false"))
        .and(query_param("limit", "50"))
        .respond_with(ok_fixture("sgt", "events_list"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let page = sgt
        .events()
        .list()
        .event_type("alarm")
        .severity(Severity::Critical)
        .acknowledged(false)
        .limit(50)
        .send()
        .await
        .unwrap();
    let req = only_request(&server).await;
    assert_eq!(
        req.url.query(),
        Some("type=alarm&severity=critical&acknowledged=false&limit=50")
    );
    assert_eq!(page.items().len(), 2);
    let e = &page.items()[0];
    assert_eq!(e.id, "evt_01HW3K9F2XQ3R4");
    assert_eq!(e.event_type, "alarm");
    assert_eq!(e.severity, Severity::Critical);
    assert_eq!(e.device_id.as_ref().unwrap(), "dev_42");
    assert!(!e.acknowledged);
    assert_eq!(
        e.message.as_deref(),
        Some("Power draw above 15 kW threshold for 5 minutes.")
    );
    assert_eq!(
        e.occurred_at.unwrap(),
        "2026-05-24T10:05:12Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(e.cleared, None);
    assert_eq!(e.acknowledged_at, None);
    let e2 = &page.items()[1];
    assert_eq!(e2.event_type, "device.offline");
    assert_eq!(e2.severity, Severity::Warning);
    assert!(e2.acknowledged);
    assert_eq!(
        page.next_cursor(),
        Some("eyJpZCI6ImV2dF8wMUhXM0s5RjJYUzVUNiJ9")
    );
    assert_eq!(
        page.meta().request_id.as_deref(),
        Some("req_01HW3K9F2XMHN2")
    );
}

#[tokio::test]
async fn items_follow_the_cursor_and_keep_unknown_severities() {
    let (server, sgt) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param(
            "cursor",
            "eyJpZCI6ImV2dF8wMUhXM0s5RjJYUzVUNiJ9",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{
                "id": "evt_3", "type": "firmware.update", "severity": "emergency",
                "acknowledged": true, "acknowledged_at": "2026-05-24T11:00:00Z",
                "cleared": true, "cleared_at": "2026-05-24T11:05:00Z", "new_field": [1]
            }],
            "meta": {"pagination": {"limit": 50, "next": null, "has_more": false}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ok_fixture("sgt", "events_list"))
        .expect(1)
        .mount(&server)
        .await;
    let events: Vec<_> = sgt.events().list().items().try_collect().await.unwrap();
    assert_eq!(events.len(), 3);
    let last = &events[2];
    assert_eq!(last.severity, Severity::Other("emergency".into()));
    assert_eq!(last.cleared, Some(true));
    assert!(last.cleared_at.is_some() && last.acknowledged_at.is_some());
}

#[tokio::test]
async fn limit_over_500_is_refused_before_sending() {
    let (server, sgt) = setup().await;
    catch_all(&server).await;
    let err = sgt.events().list().limit(501).send().await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(ref m) if m.contains("501")),
        "{err}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn ack_posts_to_the_event_and_decodes_it() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("POST")).and(path("/v1/events/evt_01HW3K9F2XQ3R4/ack")))
        .respond_with(ok_fixture("sgt", "events_ack"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let (e, meta) = sgt
        .events()
        .ack("evt_01HW3K9F2XQ3R4")
        .send_with_meta()
        .await
        .unwrap();
    let req = only_request(&server).await;
    assert!(req.body.is_empty(), "ack has no body");
    assert_eq!(req.url.query(), None);
    assert_eq!(e.id, "evt_01HW3K9F2XQ3R4");
    assert!(e.acknowledged);
    assert_eq!(meta.request_id.as_deref(), Some("req_01HW3K9F2XNJP3"));
}

#[tokio::test]
async fn clear_posts_to_the_event_and_decodes_it() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("POST")).and(path("/v1/events/evt_01HW3K9F2XQ3R4/clear")))
        .respond_with(ok_fixture("sgt", "events_clear"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let e = sgt.events().clear("evt_01HW3K9F2XQ3R4").await.unwrap();
    assert!(only_request(&server).await.body.is_empty());
    assert_eq!(e.id, "evt_01HW3K9F2XQ3R4");
    assert_eq!(e.severity, Severity::Critical);
}

#[tokio::test]
async fn comment_posts_the_note() {
    let (server, sgt) = setup().await;
    let note = "Checked on site: compressor restart, load back to normal.";
    sgt_headers(Mock::given(method("POST")).and(path("/v1/events/evt_01HW3K9F2XQ3R4/comment")))
        .and(header("content-type", "application/json"))
        .and(body_is(json!({ "note": note })))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("sgt", "events_comment")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let c = sgt
        .events()
        .comment("evt_01HW3K9F2XQ3R4", note)
        .await
        .unwrap();
    assert_eq!(c.event_id.unwrap(), "evt_01HW3K9F2XQ3R4");
    assert_eq!(c.note.as_deref(), Some(note));
    assert_eq!(
        c.created_at.unwrap(),
        "2026-05-24T10:31:40Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
}

#[tokio::test]
async fn blank_notes_and_bad_ids_are_refused_before_sending() {
    let (server, sgt) = setup().await;
    catch_all(&server).await;
    for note in ["", "   ", "\n\t"] {
        let err = sgt.events().comment("evt_1", note).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput(ref m) if m.contains("note")),
            "{err}"
        );
    }
    for id in ["", ".", ".."] {
        assert!(matches!(
            sgt.events().ack(id).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            sgt.events().clear(id).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            sgt.events().comment(id, "note").await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_event_is_a_typed_not_found() {
    let (server, sgt) = setup().await;
    Mock::given(path("/v1/events/evt_404/ack"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("x-request-id", "req_404")
                .set_body_json(json!({"error": {
                    "code": "not_found",
                    "message": "No event with id 'evt_404'."
                }})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = sgt.events().ack("evt_404").await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.request_id(), Some("req_404"));
    assert!(
        err.to_string().contains("POST /v1/events/evt_404/ack"),
        "{err}"
    );
}

/// Acknowledging and clearing set a state, so they are idempotent: a 504 (the first attempt may
/// have been applied) is retried.
#[tokio::test]
async fn ack_and_clear_are_retried_after_a_504() {
    let (server, sgt) = setup().await;
    for action in ["ack", "clear"] {
        let p = format!("/v1/events/evt_1/{action}");
        Mock::given(method("POST"))
            .and(path(p.as_str()))
            .respond_with(ResponseTemplate::new(504))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p.as_str()))
            .respond_with(ok_fixture("sgt", "events_ack"))
            .mount(&server)
            .await;
    }
    sgt.events().ack("evt_1").await.unwrap();
    sgt.events().clear("evt_1").await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

/// A repeated comment would be stored twice: not retried after a 504.
#[tokio::test]
async fn comment_is_not_retried_after_a_504() {
    let (server, sgt) = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(504))
        .mount(&server)
        .await;
    let err = sgt.events().comment("evt_1", "note").await.unwrap_err();
    assert_eq!(err.status(), Some(504));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
