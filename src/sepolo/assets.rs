//! Assets: `GET /api/v1/assets`, `/assets/{assetId}`, `/assets/{assetId}/children`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AssetId, Client, DeviceId, List, stamp};
use crate::call::Call;

/// An asset (`PublicApiAssetDto`). Fields the spec does not show are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Asset {
    /// The asset id.
    pub asset_id: AssetId,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The device mounted on it, if any.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// Whether it is in service.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

open_enum!(
    /// The `status` filter of asset and part lists.
    AssetStatusFilter {
        /// In service.
        Active => "active",
        /// Out of service.
        Inactive => "inactive",
        /// Both.
        All => "all",
    }
);

/// Marker for `GET /api/v1/assets`.
#[derive(Debug)]
pub enum AssetsList {}
/// Marker for `GET /api/v1/assets/{id}/children`.
#[derive(Debug)]
pub enum ChildrenList {}

impl List<Asset, AssetsList> {
    /// Only assets updated after this instant (incremental sync).
    pub fn updated_since(self, since: DateTime<Utc>) -> Self {
        self.param("updatedSince", stamp(since))
    }

    /// Only assets of this group.
    pub fn group_id(self, group_id: i64) -> Self {
        self.param("groupId", group_id)
    }

    /// Only assets of this external customer id.
    pub fn customer_id(self, customer_id: impl Into<String>) -> Self {
        self.param("customerId", customer_id.into())
    }

    /// Active, inactive or all.
    pub fn status(self, status: AssetStatusFilter) -> Self {
        self.param("status", status)
    }
}

/// The assets of a client. Get one from [`Client::assets`].
#[derive(Debug, Clone)]
pub struct Assets {
    client: Client,
}

impl Assets {
    pub(crate) fn new(client: Client) -> Self {
        Assets { client }
    }

    /// `GET /api/v1/assets`.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use futures::TryStreamExt;
    /// use iot_sdk::sepolo::AssetStatusFilter;
    /// let active: Vec<_> = sepolo.assets().list().status(AssetStatusFilter::Active).items().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> List<Asset, AssetsList> {
        List::new(&self.client, &["assets"])
    }

    /// `GET /api/v1/assets/{assetId}`.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// let asset = sepolo.assets().get("a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63").await?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self, asset_id: impl Into<AssetId>) -> Call<Asset> {
        let id = asset_id.into();
        self.client.get(&["assets", id.as_str()])
    }

    /// `GET /api/v1/assets/{assetId}/children`.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use futures::TryStreamExt;
    /// let kids: Vec<_> = sepolo.assets().children("a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63").items().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn children(&self, asset_id: impl Into<AssetId>) -> List<Asset, ChildrenList> {
        let id = asset_id.into();
        List::new(&self.client, &["assets", id.as_str(), "children"])
    }
}
