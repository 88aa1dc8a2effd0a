//! The SDK's spans, captured by a `tracing_subscriber::Layer`: one `iot_sdk.request` per call
//! and one `iot_sdk.attempt` per attempt, with the OpenTelemetry HTTP client field names and
//! values, never the query or the key.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Debug, Clone, Default)]
struct Captured {
    name: String,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(u64, Captured)>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut c = Captured {
            name: attrs.metadata().name().to_owned(),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.name().to_owned()),
            ..Captured::default()
        };
        attrs.record(&mut Fields(&mut c.fields));
        self.0.lock().unwrap().push((id.into_u64(), c));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, c)) = spans.iter_mut().find(|(i, _)| *i == id.into_u64()) {
            values.record(&mut Fields(&mut c.fields));
        }
    }
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn call_and_attempt_spans_carry_the_otel_http_client_fields() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("x-request-id", "req_a"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-request-id", "req_b")
                .set_body_json(json!({"data": 1})),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let key = "sgt_span_key_0123456789";
    let sgt = iot_sdk::sgt::Client::builder()
        .api_key(key)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    let n: u32 = sgt
        .raw()
        .get(["devices", "dev_1"])
        .query_pair("token", "secret-in-query")
        .data()
        .await
        .unwrap();
    assert_eq!(n, 1);

    let port = server.address().port().to_string();
    let spans: Vec<Captured> = capture
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, c)| c.clone())
        .collect();
    let common = [
        ("otel.kind", "client"),
        ("iot_sdk.vendor", "sgt"),
        ("http.request.method", "GET"),
        ("server.address", "127.0.0.1"),
        ("server.port", port.as_str()),
        ("url.path", "/v1/devices/dev_1"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut f = fields(&common);
        f.extend(fields(extra));
        f
    };
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert_eq!(spans[0].name, "iot_sdk.request");
    assert_eq!(spans[0].parent, None);
    assert_eq!(
        spans[0].fields,
        with(&[
            ("http.response.status_code", "200"),
            ("http.request.resend_count", "1"),
            ("iot_sdk.request_id", "req_b"),
        ])
    );
    assert_eq!(spans[1].name, "iot_sdk.attempt");
    assert_eq!(spans[1].parent.as_deref(), Some("iot_sdk.request"));
    assert_eq!(
        spans[1].fields,
        with(&[
            ("http.request.resend_count", "0"),
            ("http.response.status_code", "503"),
            ("error.type", "503"),
            ("iot_sdk.request_id", "req_a"),
        ])
    );
    assert_eq!(spans[2].name, "iot_sdk.attempt");
    assert_eq!(
        spans[2].fields,
        with(&[
            ("http.request.resend_count", "1"),
            ("http.response.status_code", "200"),
            ("iot_sdk.request_id", "req_b"),
        ])
    );
    let all = format!("{spans:?}");
    assert!(
        !all.contains("secret-in-query"),
        "the query never reaches a span"
    );
    assert!(!all.contains(&key[..10]), "the key never reaches a span");
}

#[tokio::test]
async fn a_transport_failure_sets_error_type_without_a_status() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    // A port nothing listens on: bind, take the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sw = iot_sdk::siliconwit::Client::builder()
        .api_key("swk_x")
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .retry_policy(iot_sdk::RetryPolicy::none())
        .build()
        .unwrap();
    let e = sw
        .raw()
        .get(["devices"])
        .decode::<Value>()
        .await
        .unwrap_err();
    assert!(matches!(e, iot_sdk::Error::Transport(_)), "{e:?}");
    let spans: Vec<Captured> = capture
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, c)| c.clone())
        .collect();
    assert_eq!(spans.len(), 2);
    for s in &spans {
        assert_eq!(s.fields["error.type"], "connect", "{s:?}");
        assert_eq!(s.fields["iot_sdk.vendor"], "siliconwit");
        assert!(!s.fields.contains_key("http.response.status_code"));
    }
    assert_eq!(spans[0].fields["http.request.resend_count"], "0");
}
