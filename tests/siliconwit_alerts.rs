//! SiliconWit alerts: list, get and trigger history.

mod common;

use iot_sdk::siliconwit::{Operator, Severity};

use common::query_string;
use common::siliconwit::{get_fixture, setup};

#[tokio::test]
async fn alerts_list_get_history() {
    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/alerts", "alerts_list").await;
    let page = sw.alerts().list().offset(0).send().await.unwrap();
    assert_eq!(query_string(&server).await.as_deref(), Some("offset=0"));
    let a = &page.items()[0];
    assert_eq!(a.id, "alert_abc123");
    assert_eq!(a.condition.field, "temperature");
    assert_eq!(a.condition.operator, Operator::Gt);
    assert_eq!(a.condition.value.as_f64(), Some(40.0));
    assert_eq!(a.severity, Some(Severity::Warning));
    assert_eq!(a.cooldown, Some(300));
    assert_eq!(a.actions, ["email"]);

    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/alerts/alert_abc123", "alerts_get").await;
    assert_eq!(
        sw.alerts().get("alert_abc123").await.unwrap().enabled,
        Some(true)
    );

    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/alerts/alert_abc123/history", "alerts_history").await;
    let h = sw.alerts().history("alert_abc123", Some(20)).await.unwrap();
    assert_eq!(query_string(&server).await.as_deref(), Some("limit=20"));
    assert_eq!(h[0].condition_value.as_ref().unwrap().as_f64(), Some(42.1));
    assert!(!h[0].acknowledged);
}
