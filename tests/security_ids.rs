//! Promise: for ANY `&str` id, a call either sends a request whose path is the base path plus
//! exactly the expected segments, each percent-decoding back to exactly the id given, or returns
//! `Error::InvalidInput` before anything is sent. Checked for every id path of the three vendors,
//! with arbitrary strings (control characters, `%`, `/`, `?`, `#`, dot mixes, non-ASCII).
//!
//! Run more cases with `PROPTEST_CASES=5000 cargo test --test security_ids`.

mod common;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use iot_sdk::Error;
use iot_sdk::sgt::{DeviceCommand, DeviceUpdate, WebhookUpdate};
use percent_encoding::percent_decode_str;
use proptest::prelude::*;

use wiremock::{Mock, MockServer, ResponseTemplate};

/// Where an id goes in a path template.
const ID: &str = "{id}";
/// Where a second id goes (Sepolo's cycle samples and movement signatures).
const ID2: &str = "{id2}";

/// One id-taking endpoint: its path template and how to call it.
struct Endpoint<C> {
    template: &'static [&'static str],
    call: fn(&C, String, String) -> BoxFuture<'static, Result<(), Error>>,
}

/// Calls `f` and keeps only whether it failed with `InvalidInput` (any other outcome is fine:
/// the catch-all answer is not a valid body for most endpoints).
fn outcome<T, F>(f: F) -> BoxFuture<'static, Result<(), Error>>
where
    F: std::future::Future<Output = iot_sdk::Result<T>> + Send + 'static,
{
    Box::pin(async move {
        match f.await {
            Err(e @ Error::InvalidInput(_)) => Err(e),
            _ => Ok(()),
        }
    })
}

fn instant(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn sgt_endpoints() -> Vec<Endpoint<iot_sdk::sgt::Client>> {
    vec![
        Endpoint {
            template: &["v1", "devices", ID],
            call: |c, a, _| outcome(c.devices().get(a).send()),
        },
        Endpoint {
            template: &["v1", "devices", ID],
            call: |c, a, _| {
                outcome(
                    c.devices()
                        .update(a, DeviceUpdate::new().name("n"))
                        .if_match("\"v1\"")
                        .send(),
                )
            },
        },
        Endpoint {
            template: &["v1", "devices", ID],
            call: |c, a, _| outcome(c.devices().delete(a).send()),
        },
        Endpoint {
            template: &["v1", "devices", ID, "commands"],
            call: |c, a, _| outcome(c.devices().command(a, DeviceCommand::Reboot).send()),
        },
        Endpoint {
            template: &["v1", "events", ID, "ack"],
            call: |c, a, _| outcome(c.events().ack(a).send()),
        },
        Endpoint {
            template: &["v1", "events", ID, "clear"],
            call: |c, a, _| outcome(c.events().clear(a).send()),
        },
        Endpoint {
            template: &["v1", "events", ID, "comment"],
            call: |c, a, _| outcome(c.events().comment(a, "note").send()),
        },
        Endpoint {
            template: &["v1", "reports", ID],
            call: |c, a, _| outcome(c.reports().get(a).send()),
        },
        Endpoint {
            template: &["v1", "webhooks", ID],
            call: |c, a, _| {
                outcome(
                    c.webhooks()
                        .update(a, WebhookUpdate::new().rotate_secret())
                        .if_match("\"v1\"")
                        .send(),
                )
            },
        },
        Endpoint {
            template: &["v1", "webhooks", ID],
            call: |c, a, _| outcome(c.webhooks().delete(a).send()),
        },
        Endpoint {
            template: &["v1", "webhooks", ID, "test"],
            call: |c, a, _| outcome(c.webhooks().test(a).send()),
        },
    ]
}

fn sepolo_endpoints() -> Vec<Endpoint<iot_sdk::sepolo::Client>> {
    vec![
        Endpoint {
            template: &["api", "v1", "assets", ID],
            call: |c, a, _| outcome(c.assets().get(a).send()),
        },
        Endpoint {
            template: &["api", "v1", "assets", ID, "children"],
            call: |c, a, _| outcome(c.assets().children(a).send()),
        },
        Endpoint {
            template: &["api", "v1", "devices", ID],
            call: |c, a, _| outcome(c.devices().get(a).send()),
        },
        Endpoint {
            template: &["api", "v1", "devices", ID, "telemetry"],
            call: |c, a, _| {
                let (from, to) = (
                    instant("2026-05-01T00:00:00Z"),
                    instant("2026-05-02T00:00:00Z"),
                );
                outcome(c.devices().telemetry(a, from, to).send())
            },
        },
        Endpoint {
            template: &["api", "v1", "devices", ID, "pointguard", "cycles"],
            call: |c, a, _| {
                let (from, to) = (
                    instant("2026-05-01T00:00:00Z"),
                    instant("2026-05-02T00:00:00Z"),
                );
                outcome(c.devices().cycles(a, from, to).send())
            },
        },
        Endpoint {
            template: &[
                "api",
                "v1",
                "devices",
                ID,
                "pointguard",
                "cycles",
                ID2,
                "samples",
            ],
            call: |c, a, b| outcome(c.devices().cycle_samples(a, b).send()),
        },
        Endpoint {
            template: &["api", "v1", "devices", ID, "movements"],
            call: |c, a, _| {
                let (from, to) = (
                    instant("2026-05-01T00:00:00Z"),
                    instant("2026-05-02T00:00:00Z"),
                );
                outcome(c.devices().movements(a, from, to).send())
            },
        },
        Endpoint {
            template: &["api", "v1", "devices", ID, "movements", ID2, "signature"],
            call: |c, a, b| outcome(c.devices().movement_signature(a, b).send()),
        },
        Endpoint {
            template: &["api", "v1", "service-reports", ID],
            call: |c, a, _| outcome(c.service().report(a).send()),
        },
    ]
}

fn siliconwit_endpoints() -> Vec<Endpoint<iot_sdk::siliconwit::Client>> {
    vec![
        Endpoint {
            template: &["v1", "devices", ID],
            call: |c, a, _| outcome(c.devices().get(a).send()),
        },
        Endpoint {
            template: &["v1", "devices", ID, "telemetry", "latest"],
            call: |c, a, _| outcome(c.devices().latest(a).send()),
        },
        Endpoint {
            template: &["v1", "devices", ID, "telemetry"],
            call: |c, a, _| outcome(c.devices().telemetry(a).send()),
        },
        Endpoint {
            template: &["v1", "alerts", ID],
            call: |c, a, _| outcome(c.alerts().get(a).send()),
        },
        Endpoint {
            template: &["v1", "alerts", ID, "history"],
            call: |c, a, _| outcome(c.alerts().history(a, None).send()),
        },
    ]
}

/// Ids made of the pieces that break URL building, mixed with ordinary and arbitrary text.
fn hostile_id() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just("%".to_owned()),
        Just("%2e".to_owned()),
        Just("%2F".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("\t".to_owned()),
        Just("\r".to_owned()),
        Just("\n".to_owned()),
        Just("\0".to_owned()),
        Just(" ".to_owned()),
        Just("é".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("dev_42".to_owned()),
        "[a-z0-9_]{1,4}",
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        prop::collection::vec(piece, 0..6).prop_map(|p| p.concat()),
        any::<String>(),
    ]
}

/// Checks one call: refused before sending, or exactly the template's segments.
async fn check<C>(server: &MockServer, client: &C, e: &Endpoint<C>, a: &str, b: &str) {
    let before = server.received_requests().await.unwrap_or_default().len();
    let result = (e.call)(client, a.to_owned(), b.to_owned()).await;
    let requests = server.received_requests().await.unwrap_or_default();
    match result {
        Err(err) => {
            assert_eq!(
                requests.len(),
                before,
                "{err}: refused, yet something was sent for {a:?} / {b:?}"
            );
        }
        Ok(()) => {
            let sent = requests
                .get(before..)
                .unwrap_or_default()
                .first()
                .unwrap_or_else(|| panic!("nothing sent for {a:?} / {b:?}"));
            let path = sent.url.path();
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            assert_eq!(
                segments.len(),
                e.template.len(),
                "{path} for {a:?} / {b:?} (template {:?})",
                e.template
            );
            for (got, want) in segments.iter().zip(e.template) {
                let decoded = percent_decode_str(got).decode_utf8().unwrap_or_else(|err| {
                    panic!("{path}: segment {got} is not UTF-8 once decoded: {err}")
                });
                let expected = match *want {
                    ID => a,
                    ID2 => b,
                    fixed => fixed,
                };
                assert_eq!(decoded, expected, "{path} for {a:?} / {b:?}");
            }
        }
    }
}

/// A server that answers every request `{}`.
async fn answer_anything() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .mount(&server)
        .await;
    server
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the property over every endpoint of a vendor.
fn property<C>(client_at: fn(&MockServer) -> C, endpoints: Vec<Endpoint<C>>) {
    let rt = runtime();
    let server = rt.block_on(answer_anything());
    let client = {
        let _guard = rt.enter();
        client_at(&server)
    };
    proptest!(common::proptest_config(), |(a in hostile_id(), b in hostile_id())| {
        rt.block_on(async {
            for e in &endpoints {
                check(&server, &client, e, &a, &b).await;
            }
        });
    });
}

fn sgt_client(server: &MockServer) -> iot_sdk::sgt::Client {
    iot_sdk::sgt::Client::builder()
        .api_key(common::sgt::KEY)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(iot_sdk::RetryPolicy::none())
        .build()
        .unwrap()
}

fn sepolo_client(server: &MockServer) -> iot_sdk::sepolo::Client {
    iot_sdk::sepolo::Client::builder()
        .api_key(common::sepolo::KEY)
        .base_url(server.uri())
        .retry_policy(iot_sdk::RetryPolicy::none())
        .build()
        .unwrap()
}

fn siliconwit_client(server: &MockServer) -> iot_sdk::siliconwit::Client {
    iot_sdk::siliconwit::Client::builder()
        .api_key(common::siliconwit::KEY)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(iot_sdk::RetryPolicy::none())
        .build()
        .unwrap()
}

#[test]
fn sgt_every_id_reaches_exactly_one_segment_or_is_refused() {
    property(sgt_client, sgt_endpoints());
}

#[test]
fn sepolo_every_id_reaches_exactly_one_segment_or_is_refused() {
    property(sepolo_client, sepolo_endpoints());
}

#[test]
fn siliconwit_every_id_reaches_exactly_one_segment_or_is_refused() {
    property(siliconwit_client, siliconwit_endpoints());
}

/// The cases that broke before the fix, for every vendor: tab, CR and LF used to vanish from the
/// URL, so `".\t."` became `..` (the parent collection) and `"a\tb"` another device `ab`.
#[test]
fn control_characters_are_refused_before_anything_is_sent() {
    let rt = runtime();
    rt.block_on(async {
        let server = answer_anything().await;
        let sgt = sgt_client(&server);
        let sepolo = sepolo_client(&server);
        let sw = siliconwit_client(&server);
        for bad in [".\t.", "\r\n.", "a\tb", "dev_42\n", "\u{7f}", "\0"] {
            for err in [
                sgt.devices().delete(bad).send().await.unwrap_err(),
                sepolo.devices().get(bad).send().await.unwrap_err(),
                sw.devices().get(bad).send().await.unwrap_err(),
            ] {
                assert!(
                    matches!(&err, Error::InvalidInput(m) if m.contains("control character")),
                    "{bad:?}: {err:?}"
                );
            }
        }
        assert!(server.received_requests().await.unwrap().is_empty());
    });
}
