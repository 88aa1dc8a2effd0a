//! SGT devices: the exact request of every endpoint, decoding of the fixtures, and the
//! read-modify-write helper.

mod common;

use common::sgt::{setup, sgt_headers};
use common::*;
use futures::TryStreamExt;
use iot_sdk::Error;
use iot_sdk::sgt::{DeviceCommand, DeviceStatus, DeviceUpdate, NewDevice};
use serde_json::json;
use wiremock::matchers::{body_json as body_is, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn list_sends_every_filter_and_decodes_the_page() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("GET")).and(path("/v1/devices")))
        .and(query_param("site", "site_dhaka_wh1"))
        .and(query_param("type", "energy_meter"))
        .and(query_param("status", "online"))
        .and(query_param("tag", "power"))
        .and(query_param("updated_since", "2026-05-01T00:00:00Z"))
        .and(query_param("limit", "100"))
        .respond_with(ok_fixture("sgt", "devices_list"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let page = sgt
        .devices()
        .list()
        .site("site_dhaka_wh1")
        .device_type("energy_meter")
        .status(DeviceStatus::Online)
        .tag("power")
        .updated_since("2026-05-01T00:00:00Z".parse().unwrap())
        .limit(100)
        .send()
        .await
        .unwrap();
    let req = only_request(&server).await;
    assert_eq!(
        req.url.query(),
        Some(
            "site=site_dhaka_wh1&type=energy_meter&status=online&tag=power&updated_since=2026-05-01T00%3A00%3A00Z&limit=100"
        )
    );
    assert_eq!(page.items().len(), 2);
    let d = &page.items()[0];
    assert_eq!(d.id, "dev_42");
    assert_eq!(d.name, "Main incomer energy meter");
    assert_eq!(d.device_type.as_deref(), Some("energy_meter"));
    assert_eq!(d.site.as_ref().unwrap(), "site_dhaka_wh1");
    assert_eq!(d.status, DeviceStatus::Online);
    assert_eq!(d.tags, vec!["power", "building-a"]);
    assert_eq!(d.etag.as_deref(), Some("\"7c1e5b02\""));
    assert_eq!(page.items()[1].status, DeviceStatus::Offline);
    assert_eq!(page.next_cursor(), Some("eyJpZCI6ImRldl80MyJ9"));
    assert_eq!(
        page.meta().request_id.as_deref(),
        Some("req_01HW3K9F2XA7BQ")
    );
}

#[tokio::test]
async fn items_follow_the_cursor_to_the_last_page() {
    let (server, sgt) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/devices"))
        .and(query_param("cursor", "eyJpZCI6ImRldl80MyJ9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "dev_44", "name": "n", "status": "provisioning"}],
            "meta": {"request_id": "req_2", "pagination": {"limit": 100, "next": null, "has_more": false}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/devices"))
        .respond_with(ok_fixture("sgt", "devices_list"))
        .expect(1)
        .mount(&server)
        .await;
    let ids: Vec<String> = sgt
        .devices()
        .list()
        .items()
        .map_ok(|d| d.id.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, ["dev_42", "dev_43", "dev_44"]);
}

#[tokio::test]
async fn limit_over_500_is_refused_before_sending() {
    let (server, sgt) = setup().await;
    catch_all(&server).await;
    let err = sgt.devices().list().limit(501).send().await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(ref m) if m.contains("501")),
        "{err}"
    );
    let err = sgt
        .devices()
        .list()
        .limit(0)
        .items()
        .try_next()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn create_posts_the_body() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("POST")).and(path("/v1/devices")))
        .and(header("content-type", "application/json"))
        .and(body_is(json!({
            "name": "Line 3 PLC gateway",
            "type": "gateway",
            "site": "site_dhaka_wh1",
            "tags": ["line-3", "plc"]
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("sgt", "devices_create")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let d = sgt
        .devices()
        .create(
            NewDevice::new("Line 3 PLC gateway", "gateway")
                .site("site_dhaka_wh1")
                .tags(["line-3", "plc"]),
        )
        .await
        .unwrap();
    assert_eq!(d.id, "dev_108");
    assert_eq!(d.status, DeviceStatus::Provisioning);
}

#[tokio::test]
async fn create_is_not_retried_after_a_504() {
    let (server, sgt) = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(504))
        .mount(&server)
        .await;
    let err = sgt
        .devices()
        .create(NewDevice::new("n", "t"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(504));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn create_is_retried_after_a_500_because_sgt_says_it_is_safe() {
    let (server, sgt) = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("sgt", "devices_create")))
        .mount(&server)
        .await;
    sgt.devices()
        .create(NewDevice::new("n", "t"))
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn get_returns_the_device_and_fills_the_etag_from_the_header() {
    let (server, sgt) = setup().await;
    let mut body = fixture("sgt", "devices_get");
    body["data"].as_object_mut().unwrap().remove("etag");
    sgt_headers(Mock::given(method("GET")).and(path("/v1/devices/dev_42")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "\"abc\"")
                .set_body_json(body),
        )
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let (d, meta) = sgt.devices().get("dev_42").send_with_meta().await.unwrap();
    assert_eq!(d.id, "dev_42");
    assert_eq!(d.etag.as_deref(), Some("\"abc\""));
    assert_eq!(meta.etag.as_deref(), Some("\"abc\""));
}

#[tokio::test]
async fn get_unknown_device_is_a_typed_not_found() {
    let (server, sgt) = setup().await;
    Mock::given(path("/v1/devices/dev_404"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("x-request-id", "req_01HW3K9F2X")
                .set_body_json(fixture("sgt", "error_device_not_found")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = sgt.devices().get("dev_404").await.unwrap_err();
    assert!(err.is_not_found());
    let api = err.api().unwrap();
    assert_eq!(api.code(), &iot_sdk::ErrorCode::NotFound);
    assert_eq!(api.vendor_code(), Some("device_not_found"));
    assert_eq!(api.details().unwrap()["device_id"], "dev_42");
    assert_eq!(err.request_id(), Some("req_01HW3K9F2X"));
    assert!(err.to_string().contains("GET /v1/devices/dev_404"), "{err}");
}

#[tokio::test]
async fn empty_and_dot_ids_are_refused() {
    let (server, sgt) = setup().await;
    catch_all(&server).await;
    for id in ["", ".", ".."] {
        assert!(matches!(
            sgt.devices().get(id).await,
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            sgt.devices().delete(id).await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn update_sends_if_match_and_only_the_set_fields() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("PATCH")).and(path("/v1/devices/dev_42")))
        .and(header("if-match", "\"7c1e5b02\""))
        .and(body_is(json!({"name": "Incomer A", "tags": ["power"]})))
        .respond_with(ok_fixture("sgt", "devices_update"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let d = sgt
        .devices()
        .update(
            "dev_42",
            DeviceUpdate::new().name("Incomer A").tags(["power"]),
        )
        .if_match("\"7c1e5b02\"")
        .await
        .unwrap();
    assert_eq!(d.id, "dev_42");
}

#[tokio::test]
async fn stale_etag_is_a_conflict_and_not_retried() {
    let (server, sgt) = setup().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "error": {"code": "conflict", "message": "stale If-Match", "request_id": "req_c"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = sgt
        .devices()
        .update("dev_42", DeviceUpdate::new().name("x"))
        .if_match("\"old\"")
        .await
        .unwrap_err();
    assert!(err.is_conflict());
}

#[tokio::test]
async fn a_bad_etag_value_is_invalid_input() {
    let (server, sgt) = setup().await;
    catch_all(&server).await;
    let err = sgt
        .devices()
        .update("dev_42", DeviceUpdate::new().name("x"))
        .if_match("bad\netag")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
}

#[tokio::test]
async fn modify_rereads_and_retries_on_conflict() {
    let (server, sgt) = setup().await;
    // The first read sees v1; a colleague's write makes our PATCH with v1 conflict; the second
    // read sees v2 (with their tag), and our PATCH with v2 succeeds.
    let device = |etag: &str, tags: serde_json::Value| {
        ResponseTemplate::new(200).set_body_json(json!({
            "data": {"id": "dev_42", "name": "m", "status": "online", "tags": tags, "etag": etag},
            "meta": {"request_id": "req"}
        }))
    };
    Mock::given(method("GET"))
        .respond_with(device("\"v1\"", json!(["a"])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(device("\"v2\"", json!(["a", "theirs"])))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(header("if-match", "\"v1\""))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(json!({"error": {"code": "conflict", "message": "stale"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(header("if-match", "\"v2\""))
        .and(body_is(json!({"tags": ["a", "theirs", "ours"]})))
        .respond_with(device("\"v3\"", json!(["a", "theirs", "ours"])))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let d = sgt
        .devices()
        .modify("dev_42", |d| {
            let mut tags = d.tags.clone();
            tags.push("ours".into());
            Some(DeviceUpdate::new().tags(tags))
        })
        .await
        .unwrap();
    assert_eq!(d.tags, ["a", "theirs", "ours"]);
    assert_eq!(d.etag.as_deref(), Some("\"v3\""));
}

#[tokio::test]
async fn modify_gives_up_after_the_attempts() {
    let (server, sgt) = setup().await;
    Mock::given(method("GET"))
        .respond_with(ok_fixture("sgt", "devices_get"))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(json!({"error": {"code": "conflict", "message": "stale"}})),
        )
        .expect(3)
        .mount(&server)
        .await;
    let err = sgt
        .devices()
        .modify_with_attempts("dev_42", 3, |_| Some(DeviceUpdate::new().name("x")))
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    // Nothing to change: one read, no write.
    let d = sgt.devices().modify("dev_42", |_| None).await.unwrap();
    assert_eq!(d.id, "dev_42");
}

#[tokio::test]
async fn delete_is_a_204() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("DELETE")).and(path("/v1/devices/dev_42")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    sgt.devices().delete("dev_42").await.unwrap();
}

#[tokio::test]
async fn command_posts_the_command() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("POST")).and(path("/v1/devices/dev_42/commands")))
        .and(body_is(json!({"command": "reboot"})))
        .respond_with(ResponseTemplate::new(202).set_body_json(fixture("sgt", "devices_command")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let r = sgt
        .devices()
        .command("dev_42", DeviceCommand::Reboot)
        .await
        .unwrap();
    assert_eq!(r.command, Some(DeviceCommand::Reboot));
    assert_eq!(r.status.as_deref(), Some("queued"));
    assert_eq!(r.device_id.unwrap(), "dev_42");
}

#[tokio::test]
async fn count_is_not_mistaken_for_an_id() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("GET")).and(path("/v1/devices/count")))
        .respond_with(ok_fixture("sgt", "devices_count"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let c = sgt.devices().count().await.unwrap();
    assert_eq!(c.count, 1284);
    assert!(c.approximate);
}

#[tokio::test]
async fn unknown_status_values_are_kept() {
    let (server, sgt) = setup().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"id": "dev_1", "name": "n", "status": "maintenance", "future_field": {"x": 1}},
            "meta": {}
        })))
        .mount(&server)
        .await;
    let d = sgt.devices().get("dev_1").await.unwrap();
    assert_eq!(d.status, DeviceStatus::Other("maintenance".into()));
    assert_eq!(d.status.as_str(), "maintenance");
}
