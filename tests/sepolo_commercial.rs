//! Sepolo customers, vendors and inventory parts.

mod common;

use iot_sdk::sepolo::AssetStatusFilter;

use common::query_string;
use common::sepolo::{get_fixture, setup};

#[tokio::test]
async fn customers_vendors_parts() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/customers", "customers").await;
    let page = sepolo
        .customers()
        .external_system("SAP")
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("externalSystem=SAP")
    );
    assert_eq!(page.items()[0].external_system.as_deref(), Some("SAP"));
    assert_eq!(page.items()[0].extra["name"], "Nordic Cold Storage AB");

    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/vendors", "vendors").await;
    let page = sepolo.vendors().send().await.unwrap();
    assert_eq!(query_string(&server).await, None);
    assert_eq!(
        page.items()[1].vendor_id.as_ref().unwrap(),
        "a1f5c8e3-2b7d-4e09-9c64-8d3a0f6b2e71"
    );

    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/inventory/parts", "inventory_parts").await;
    let page = sepolo
        .inventory_parts()
        .vendor_id("4e9a2b6c-8d1f-4c37-a5e0-3b7d9f1c6a28")
        .status(AssetStatusFilter::All)
        .page_size(200)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("vendorId=4e9a2b6c-8d1f-4c37-a5e0-3b7d9f1c6a28&status=all&pageSize=200")
    );
    assert_eq!(page.items()[0].extra["quantityOnHand"], 3);
}
