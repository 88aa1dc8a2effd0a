//! SGT webhooks: the exact request of every endpoint, decoding of the fixtures, If-Match and
//! conflicts, and the signing secret never showing in `Debug`, `Display` or an error.

mod common;

use common::sgt::{setup, sgt_headers};
use common::*;
use futures::TryStreamExt;
use iot_sdk::Error;
use iot_sdk::sgt::{NewWebhook, WebhookUpdate};
use serde_json::json;
use wiremock::matchers::{body_json as body_is, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

const SECRET: &str = "whsec_8f3a1c6e2b9d4f70a5c1e8b3d6f2a9c4";

#[tokio::test]
async fn list_decodes_the_page() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("GET")).and(path("/v1/webhooks")))
        .and(query_param("limit", "10"))
        .respond_with(ok_fixture("sgt", "webhooks_list"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let hooks: Vec<_> = sgt
        .webhooks()
        .list()
        .limit(10)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(only_request(&server).await.url.query(), Some("limit=10"));
    assert_eq!(hooks.len(), 2);
    let h = &hooks[0];
    assert_eq!(h.id, "wh_01HW3K9F2XZ1A2");
    assert_eq!(h.url, "https://erp.acme-industries.com/hooks/sgt");
    assert_eq!(h.events, ["report.ready", "alarm.raised"]);
    assert_eq!(h.active, Some(true));
    assert_eq!(
        h.created_at.unwrap(),
        "2026-03-02T14:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(h.etag, None, "the fixture has none");
    assert_eq!(hooks[1].active, Some(false));
    assert!(matches!(
        sgt.webhooks().list().limit(501).send().await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn create_posts_url_and_events_and_returns_the_secret() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("POST")).and(path("/v1/webhooks")))
        .and(header("content-type", "application/json"))
        .and(body_is(json!({
            "url": "https://erp.acme-industries.com/hooks/sgt-reports",
            "events": ["report.ready"]
        })))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("etag", "\"w1\"")
                .set_body_json(fixture("sgt", "webhooks_create")),
        )
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let created = sgt
        .webhooks()
        .create(NewWebhook::new(
            "https://erp.acme-industries.com/hooks/sgt-reports",
            ["report.ready"],
        ))
        .await
        .unwrap();
    assert_eq!(created.webhook.id, "wh_01HW3K9F2X4D5E");
    assert_eq!(created.webhook.events, ["report.ready"]);
    assert_eq!(created.webhook.etag.as_deref(), Some("\"w1\""));
    assert_eq!(created.secret.expose(), SECRET);
    let debug = format!("{created:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("WebhookSecret([REDACTED])"), "{debug}");
}

#[tokio::test]
async fn the_secret_never_shows_in_a_decode_error() {
    let (server, sgt) = setup().await;
    let mut body = fixture("sgt", "webhooks_create");
    body["data"]["active"] = json!("yes"); // not a bool: the response does not decode
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(body))
        .mount(&server)
        .await;
    let err = sgt
        .webhooks()
        .create(NewWebhook::new("https://a.example/h", ["report.ready"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("whsec_"), "{text}");
    }
    let Error::Decode(d) = &err else {
        unreachable!()
    };
    assert_eq!(d.body_snippet(), None);
}

#[tokio::test]
async fn a_missing_secret_is_a_decode_error() {
    let (server, sgt) = setup().await;
    let mut body = fixture("sgt", "webhooks_create");
    body["data"].as_object_mut().unwrap().remove("secret");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(body))
        .mount(&server)
        .await;
    let err = sgt
        .webhooks()
        .create(NewWebhook::new("https://a.example/h", ["report.ready"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Decode(ref d) if d.message().contains("secret")),
        "{err}"
    );
}

/// The spec does not require https for receivers: http is accepted, anything that is not an
/// absolute http(s) URL is refused before sending.
#[tokio::test]
async fn receiver_urls_are_checked_before_sending() {
    let (server, sgt) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/webhooks"))
        .and(body_is(
            json!({"url": "http://10.0.0.5:8080/hooks", "events": ["alarm.raised"]}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("sgt", "webhooks_create")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    sgt.webhooks()
        .create(NewWebhook::new(
            "http://10.0.0.5:8080/hooks",
            ["alarm.raised"],
        ))
        .await
        .unwrap();
    for bad in [
        "",
        "not a url",
        "/hooks/relative",
        "ftp://files.example/h",
        "mailto:a@b.c",
    ] {
        let err = sgt
            .webhooks()
            .create(NewWebhook::new(bad, ["alarm.raised"]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad}: {err}");
        let err = sgt
            .webhooks()
            .update("wh_1", WebhookUpdate::new().url(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad}: {err}");
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn update_sends_if_match_and_only_the_set_fields() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("PATCH")).and(path("/v1/webhooks/wh_01HW3K9F2XZ1A2")))
        .and(header("if-match", "\"e1\""))
        .and(header("content-type", "application/json"))
        .and(body_is(json!({
            "events": ["report.ready", "alarm.raised", "alarm.cleared"],
            "active": true
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"e2\"")
                .set_body_json(fixture("sgt", "webhooks_update")),
        )
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let updated = sgt
        .webhooks()
        .update(
            "wh_01HW3K9F2XZ1A2",
            WebhookUpdate::new()
                .events(["report.ready", "alarm.raised", "alarm.cleared"])
                .active(true),
        )
        .if_match("\"e1\"")
        .await
        .unwrap();
    assert_eq!(
        updated.webhook.events,
        ["report.ready", "alarm.raised", "alarm.cleared"]
    );
    assert_eq!(updated.webhook.etag.as_deref(), Some("\"e2\""));
    assert!(updated.secret.is_none());
}

#[tokio::test]
async fn rotating_the_secret_returns_the_new_one() {
    let (server, sgt) = setup().await;
    let mut body = fixture("sgt", "webhooks_update");
    body["data"]["secret"] = json!("whsec_rotated_0123");
    sgt_headers(Mock::given(method("PATCH")).and(path("/v1/webhooks/wh_01HW3K9F2XZ1A2")))
        .and(body_is(json!({
            "url": "https://erp.acme-industries.com/hooks/sgt-v2",
            "rotate_secret": true
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let updated = sgt
        .webhooks()
        .update(
            "wh_01HW3K9F2XZ1A2",
            WebhookUpdate::new()
                .url("https://erp.acme-industries.com/hooks/sgt-v2")
                .rotate_secret(),
        )
        .await
        .unwrap();
    let req = only_request(&server).await;
    assert!(req.headers.get("if-match").is_none());
    let secret = updated.secret.as_ref().unwrap();
    assert_eq!(secret.expose(), "whsec_rotated_0123");
    assert!(!format!("{updated:?}").contains("whsec_rotated_0123"));
}

#[tokio::test]
async fn stale_if_match_is_a_conflict_and_not_retried() {
    let (server, sgt) = setup().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "error": {"code": "conflict", "message": "stale If-Match", "request_id": "req_c"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = sgt
        .webhooks()
        .update("wh_1", WebhookUpdate::new().active(false))
        .if_match("\"old\"")
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(err.request_id(), Some("req_c"));
}

/// With If-Match a PATCH is safe to repeat (a second apply would conflict, not double-apply), so
/// a 504 is retried; without it, it is not.
#[tokio::test]
async fn update_is_retried_after_a_504_only_with_if_match() {
    let (server, sgt) = setup().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(504))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ok_fixture("sgt", "webhooks_update"))
        .mount(&server)
        .await;
    sgt.webhooks()
        .update("wh_1", WebhookUpdate::new().active(true))
        .if_match("\"e1\"")
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    server.reset().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(504))
        .mount(&server)
        .await;
    let err = sgt
        .webhooks()
        .update("wh_1", WebhookUpdate::new().active(true))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(504));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn delete_is_a_204() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("DELETE")).and(path("/v1/webhooks/wh_01HW3K9F2XZ1A2")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    sgt.webhooks().delete("wh_01HW3K9F2XZ1A2").await.unwrap();
    assert!(only_request(&server).await.body.is_empty());
}

#[tokio::test]
async fn test_posts_and_decodes_the_delivery() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("POST")).and(path("/v1/webhooks/wh_01HW3K9F2XZ1A2/test")))
        .respond_with(ok_fixture("sgt", "webhooks_test"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let r = sgt.webhooks().test("wh_01HW3K9F2XZ1A2").await.unwrap();
    assert!(only_request(&server).await.body.is_empty());
    assert_eq!(r.webhook_id.unwrap(), "wh_01HW3K9F2XZ1A2");
    assert_eq!(r.delivered, Some(true));
    assert_eq!(r.response_status, Some(200));
    assert!(r.sent_at.is_some());
}

#[tokio::test]
async fn unknown_webhook_is_a_not_found_and_bad_ids_are_refused() {
    let (server, sgt) = setup().await;
    Mock::given(path("/v1/webhooks/wh_404"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": {"code": "not_found", "message": "No webhook 'wh_404'."}
        })))
        .expect(2)
        .mount(&server)
        .await;
    catch_all(&server).await;
    assert!(
        sgt.webhooks()
            .delete("wh_404")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        sgt.webhooks()
            .update("wh_404", WebhookUpdate::new().active(false))
            .await
            .unwrap_err()
            .is_not_found()
    );
    for id in ["", ".", ".."] {
        assert!(matches!(
            sgt.webhooks().delete(id).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            sgt.webhooks().test(id).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            sgt.webhooks().update(id, WebhookUpdate::new()).await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
