//! Devices: field assets registered with SGT (gateways, PLCs, meters, sensors).
//!
//! | call | endpoint |
//! |---|---|
//! | [`Devices::list`] | `GET /devices` (site, type, status, tag, updated_since, limit ≤ 500, cursor) |
//! | [`Devices::create`] | `POST /devices` |
//! | [`Devices::get`] | `GET /devices/{id}` (with its ETag) |
//! | [`Devices::update`] | `PATCH /devices/{id}` (`If-Match`; 409 on a stale ETag) |
//! | [`Devices::modify`] | read-modify-write that re-reads and retries on 409 |
//! | [`Devices::delete`] | `DELETE /devices/{id}` (soft delete) |
//! | [`Devices::command`] | `POST /devices/{id}/commands` |
//! | [`Devices::count`] | `GET /devices/count` (approximate) |

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Client, DeviceId, SiteId, Wire};
use crate::List;
use crate::call::Call;
use crate::envelope::{self, Envelope, no_content};
use crate::error::{ProtocolError, Result};
use crate::transport::{Request, ResponseMeta, Transport};

open_enum!(
    /// A device's connection state.
    DeviceStatus {
        /// Reporting.
        Online => "online",
        /// Not reporting.
        Offline => "offline",
        /// Registered, not yet commissioned.
        Provisioning => "provisioning",
    }
);

/// A device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Device {
    /// `dev_…`.
    pub id: DeviceId,
    /// Display name.
    pub name: String,
    /// Device type (`energy_meter`, `gateway`, …).
    #[serde(rename = "type", default)]
    pub device_type: Option<String>,
    /// The site it is installed at.
    #[serde(default)]
    pub site: Option<SiteId>,
    /// Connection state.
    pub status: DeviceStatus,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When it was registered.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed (the key of an incremental sync).
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Version tag for `If-Match`: from the body, or the `ETag` header when the body has none.
    #[serde(default)]
    pub etag: Option<String>,
}

/// A device to register: name and type are required.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewDevice {
    name: String,
    #[serde(rename = "type")]
    device_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<SiteId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
}

impl NewDevice {
    /// A device with a name and a type.
    pub fn new(name: impl Into<String>, device_type: impl Into<String>) -> Self {
        NewDevice {
            name: name.into(),
            device_type: device_type.into(),
            site: None,
            tags: Vec::new(),
        }
    }

    /// The site it is installed at.
    #[must_use]
    pub fn site(mut self, site: impl Into<SiteId>) -> Self {
        self.site = Some(site.into());
        self
    }

    /// Tags.
    #[must_use]
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }
}

/// The mutable fields of a device; fields left unset are not changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<SiteId>,
}

impl DeviceUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Renames the device.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Replaces the tags.
    #[must_use]
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Moves the device to another site.
    #[must_use]
    pub fn site(mut self, site: impl Into<SiteId>) -> Self {
        self.site = Some(site.into());
        self
    }

    /// Whether the update sets no field.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

open_enum!(
    /// An out-of-band command.
    DeviceCommand {
        /// Restart the device.
        Reboot => "reboot",
        /// Re-read its configuration.
        RefreshConfig => "refresh_config",
    }
);

/// The server's receipt for a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandReceipt {
    /// The device.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// The command.
    #[serde(default)]
    pub command: Option<DeviceCommand>,
    /// Delivery state (`queued`, …).
    #[serde(default)]
    pub status: Option<String>,
    /// When it was issued.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub issued_at: Option<DateTime<Utc>>,
}

/// An approximate device count (accurate to about a minute of staleness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceCount {
    /// The count.
    pub count: u64,
    /// Whether the count is approximate (it always is, per the spec).
    #[serde(default = "yes")]
    pub approximate: bool,
}

fn yes() -> bool {
    true
}

/// How many times [`Devices::modify`] tries before returning the conflict.
pub const MODIFY_ATTEMPTS: u32 = 5;

/// The devices of a client. Get one from [`Client::devices`].
#[derive(Debug, Clone)]
pub struct Devices {
    client: Client,
}

impl Devices {
    pub(crate) fn new(client: Client) -> Self {
        Devices { client }
    }

    fn transport(&self) -> Transport {
        self.client.transport.clone()
    }

    /// Lists devices, filtered; `.send()` for one page, `.pages()` or `.items()` to stream.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use futures::TryStreamExt;
    /// use iot_sdk::sgt::DeviceStatus;
    /// let offline: Vec<_> = sgt.devices().list()
    ///     .site("site_dhaka_wh1")
    ///     .status(DeviceStatus::Offline)
    ///     .items()
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> List<Device, DeviceFilter> {
        self.client.list(&["devices"], DeviceFilter::default())
    }

    /// Registers a device.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use iot_sdk::sgt::NewDevice;
    /// let d = sgt.devices()
    ///     .create(NewDevice::new("Line 3 PLC gateway", "gateway").site("site_dhaka_wh1"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn create(&self, device: NewDevice) -> Call<Device> {
        let req = Request::new(Method::POST, segments!["devices"]).json(&device);
        Call::new(self.transport(), req, device_with_etag)
    }

    /// Reads a device, with its ETag (from the body, or the `ETag` header).
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// let d = sgt.devices().get("dev_42").await?;
    /// println!("{} is {}", d.name, d.status);
    /// # Ok(()) }
    /// ```
    pub fn get(&self, id: impl Into<DeviceId>) -> Call<Device> {
        let id = id.into();
        let req = Ok(Request::new(Method::GET, segments!["devices", id]));
        Call::new(self.transport(), req, device_with_etag)
    }

    /// Updates a device's name, tags or site. Add `.if_match(etag)` so a concurrent change is
    /// refused with a conflict (409) instead of silently overwritten.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use iot_sdk::sgt::DeviceUpdate;
    /// let d = sgt.devices().get("dev_42").await?;
    /// let etag = d.etag.clone().unwrap_or_default();
    /// match sgt.devices().update("dev_42", DeviceUpdate::new().name("Incomer A")).if_match(etag).await {
    ///     Err(e) if e.is_conflict() => { /* re-read and try again, or use modify() */ }
    ///     other => { other?; }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn update(&self, id: impl Into<DeviceId>, update: DeviceUpdate) -> Call<Device> {
        let id = id.into();
        let req = Request::new(Method::PATCH, segments!["devices", id]).json(&update);
        Call::new(self.transport(), req, device_with_etag)
    }

    /// Read-modify-write: reads the device, asks `change` for an update (`None`: nothing to do),
    /// and sends it with `If-Match`. On a conflict it re-reads and asks again, up to
    /// [`MODIFY_ATTEMPTS`] times, then returns the conflict.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use iot_sdk::sgt::DeviceUpdate;
    /// // Add a tag without losing one a colleague adds at the same time.
    /// let d = sgt.devices().modify("dev_42", |d| {
    ///     if d.tags.iter().any(|t| t == "audited") { return None; }
    ///     let mut tags = d.tags.clone();
    ///     tags.push("audited".into());
    ///     Some(DeviceUpdate::new().tags(tags))
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn modify<F>(&self, id: impl Into<DeviceId>, change: F) -> Result<Device>
    where
        F: FnMut(&Device) -> Option<DeviceUpdate>,
    {
        self.modify_with_attempts(id, MODIFY_ATTEMPTS, change).await
    }

    /// [`Devices::modify`] with a chosen number of attempts (at least 1).
    pub async fn modify_with_attempts<F>(
        &self,
        id: impl Into<DeviceId>,
        attempts: u32,
        mut change: F,
    ) -> Result<Device>
    where
        F: FnMut(&Device) -> Option<DeviceUpdate>,
    {
        let id = id.into();
        let attempts = attempts.max(1);
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let current = self.get(&id).await?;
            let Some(update) = change(&current) else {
                return Ok(current);
            };
            let Some(etag) = current.etag.clone() else {
                return Err(ProtocolError::new(format!(
                    "device {id} came back without an ETag, so it cannot be updated safely"
                ))
                .into());
            };
            match self.update(&id, update).if_match(etag).await {
                Err(e) if e.is_conflict() && attempt < attempts => {
                    tracing::debug!(device = %id, attempt, "conflict: re-reading");
                    // A little jitter so that competing writers do not stay in lockstep.
                    let pause = Duration::from_millis(fastrand::u64(0..=20 * u64::from(attempt)));
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    /// Decommissions a device (soft delete: its data is retained per the retention policy).
    pub fn delete(&self, id: impl Into<DeviceId>) -> Call<()> {
        let id = id.into();
        let req = Ok(Request::new(Method::DELETE, segments!["devices", id]));
        Call::new(self.transport(), req, no_content)
    }

    /// Issues an out-of-band command. Not retried after a possible delivery (a 500 or 502 is,
    /// per the spec; a timeout is not), so a reboot is never sent twice by the SDK.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use iot_sdk::sgt::DeviceCommand;
    /// let receipt = sgt.devices().command("dev_42", DeviceCommand::Reboot).await?;
    /// # Ok(()) }
    /// ```
    pub fn command(&self, id: impl Into<DeviceId>, command: DeviceCommand) -> Call<CommandReceipt> {
        let id = id.into();
        #[derive(Serialize)]
        struct Body {
            command: DeviceCommand,
        }
        let req = Request::new(Method::POST, segments!["devices", id, "commands"])
            .json(&Body { command });
        Call::new(self.transport(), req, Wire::call)
    }

    /// The approximate number of devices.
    pub fn count(&self) -> Call<DeviceCount> {
        let req = Ok(Request::new(Method::GET, segments!["devices", "count"]));
        Call::new(self.transport(), req, Wire::call)
    }
}

/// Decodes a device and fills its ETag from the header when the body has none.
fn device_with_etag(
    t: Transport,
    req: Request,
) -> BoxFuture<'static, Result<(Device, ResponseMeta)>> {
    Box::pin(async move {
        let (mut device, meta) = envelope::send_one::<Device>(Wire::ONE, &t, &req).await?;
        if device.etag.is_none() {
            device.etag = meta.etag.clone();
        }
        Ok((device, meta))
    })
}

/// The filters of [`Devices::list`] (`GET /devices`), AND-combined; set them with the list's
/// methods.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct DeviceFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<SiteId>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    device_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<DeviceStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_since: Option<DateTime<Utc>>,
}

impl List<Device, DeviceFilter> {
    /// Only devices at this site.
    pub fn site(self, site: impl Into<SiteId>) -> Self {
        self.filter(|q| q.site = Some(site.into()))
    }

    /// Only devices of this type.
    pub fn device_type(self, device_type: impl Into<String>) -> Self {
        self.filter(|q| q.device_type = Some(device_type.into()))
    }

    /// Only devices in this state.
    pub fn status(self, status: DeviceStatus) -> Self {
        self.filter(|q| q.status = Some(status))
    }

    /// Only devices with this tag.
    pub fn tag(self, tag: impl Into<String>) -> Self {
        self.filter(|q| q.tag = Some(tag.into()))
    }

    /// Only devices changed after this instant: the canonical incremental sync.
    pub fn updated_since(self, since: DateTime<Utc>) -> Self {
        self.filter(|q| q.updated_since = Some(since))
    }
}
