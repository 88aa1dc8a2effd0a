//! SiliconWit account: usage and API key metadata.

mod common;

use common::siliconwit::{get_fixture, setup};

#[tokio::test]
async fn account_usage_and_keys() {
    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/account/usage", "account_usage").await;
    let u = sw.usage().await.unwrap();
    assert_eq!(u.plan.plan, "starter");
    assert_eq!(u.plan.data_retention_days, Some(30));
    assert_eq!(
        (
            u.devices.total,
            u.devices.active,
            u.devices.paused,
            u.devices.limit
        ),
        (5, 4, 1, 10)
    );
    assert_eq!(u.telemetry.data_points_24h, 1440);
    assert_eq!((u.alerts.total, u.alerts.active), (3, 2));

    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/account/keys", "account_keys").await;
    let keys = sw.api_keys().await.unwrap();
    assert_eq!(keys[0].key_prefix.as_deref(), Some("swk_AbCd"));
    assert!(keys[0].revoked_at.is_none());
}
