//! Assets: `GET /api/v1/assets`, `/assets/{assetId}`, `/assets/{assetId}/children`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AssetId, Client, DeviceId};
use crate::List;
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

/// The filters of [`Assets::list`] (`GET /api/v1/assets`); set them with the list's methods.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_since: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<AssetStatusFilter>,
}

impl List<Asset, AssetFilter> {
    /// Only assets updated after this instant (incremental sync).
    pub fn updated_since(self, since: DateTime<Utc>) -> Self {
        self.filter(|q| q.updated_since = Some(since))
    }

    /// Only assets of this group.
    pub fn group_id(self, group_id: i64) -> Self {
        self.filter(|q| q.group_id = Some(group_id))
    }

    /// Only assets of this external customer id.
    pub fn customer_id(self, customer_id: impl Into<String>) -> Self {
        self.filter(|q| q.customer_id = Some(customer_id.into()))
    }

    /// Active, inactive or all.
    pub fn status(self, status: AssetStatusFilter) -> Self {
        self.filter(|q| q.status = Some(status))
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
    pub fn list(&self) -> List<Asset, AssetFilter> {
        self.client.list(&["assets"], AssetFilter::default())
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
    pub fn children(&self, asset_id: impl Into<AssetId>) -> List<Asset, ()> {
        let id = asset_id.into();
        self.client.list(&["assets", id.as_str(), "children"], ())
    }
}
