//! Sepolo assets: the list with every filter, the page-size check, one asset and its children.

mod common;

use common::*;
use iot_sdk::Error;
use iot_sdk::sepolo::AssetStatusFilter;

use common::query_string;
use common::sepolo::{get_fixture, instant, setup};

#[tokio::test]
async fn assets_list_with_every_filter() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/assets", "assets_list").await;
    let page = sepolo
        .assets()
        .list()
        .updated_since(instant("2026-05-01T00:00:00Z"))
        .group_id(12)
        .customer_id("CUST-10042")
        .status(AssetStatusFilter::Active)
        .page_size(500)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some(
            "updatedSince=2026-05-01T00%3A00%3A00Z&groupId=12&customerId=CUST-10042&status=active&pageSize=500"
        )
    );
    assert_eq!(page.items().len(), 2);
    assert_eq!(
        page.items()[0].asset_id,
        "a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63"
    );
    assert_eq!(page.items()[0].name.as_deref(), Some("Cooling line 4"));
    assert_eq!(
        page.items()[0].device_id.as_ref().unwrap(),
        "SEP-DEVICE-001"
    );
    assert_eq!(page.items()[1].is_active, Some(false));
    assert!(page.items()[1].device_id.is_none());
    assert_eq!(page.next_cursor(), Some("eyJsYXN0SWQiOiIwZThkNDFjMiJ9"));
}

#[tokio::test]
async fn page_size_over_500_is_refused() {
    let (server, sepolo) = setup().await;
    catch_all(&server).await;
    let err = sepolo
        .assets()
        .list()
        .page_size(501)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(ref m) if m.contains("501")));
    assert!(matches!(
        sepolo.vendors().page_size(0).send().await,
        Err(Error::InvalidInput(_))
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn assets_get_children_and_summary() {
    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/assets/a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63",
        "assets_get",
    )
    .await;
    let a = sepolo
        .assets()
        .get("a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63")
        .await
        .unwrap();
    assert_eq!(a.is_active, Some(true));

    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/assets/a33b5a5d/children",
        "assets_children",
    )
    .await;
    let kids = sepolo
        .assets()
        .children("a33b5a5d")
        .page_size(50)
        .send()
        .await
        .unwrap();
    assert_eq!(query_string(&server).await.as_deref(), Some("pageSize=50"));
    assert_eq!(
        kids.items()[1].device_id.as_ref().unwrap(),
        "SEP-DEVICE-003"
    );

    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/reporting/assets-summary",
        "assets_summary",
    )
    .await;
    let s = sepolo.reporting().assets_summary().await.unwrap();
    assert_eq!(
        (
            s.total_assets,
            s.active_assets,
            s.inactive_assets,
            s.with_devices,
            s.overdue_service
        ),
        (120, 112, 8, 98, 7)
    );
    assert_eq!(s.total_maintenance_cost, 420000.0);
}
