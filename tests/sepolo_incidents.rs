//! Sepolo incidents: the list with every filter.

mod common;

use common::query_string;
use common::sepolo::{get_fixture, instant, setup};

#[tokio::test]
async fn incidents_with_every_filter() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/incidents", "incidents").await;
    let page = sepolo
        .incidents()
        .between(
            instant("2026-05-01T00:00:00Z"),
            instant("2026-06-01T00:00:00Z"),
        )
        .device_id("SEP-DEVICE-001")
        .state(1)
        .page_size(10)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some(
            "deviceId=SEP-DEVICE-001&state=1&pageSize=10&fromUtc=2026-05-01T00%3A00%3A00Z&toUtc=2026-06-01T00%3A00%3A00Z"
        )
    );
    assert_eq!(page.items()[0].state, Some(1));
    assert_eq!(page.items()[0].extra["stateText"], "Open");
}
