//! Customers, vendors and inventory parts.
//!
//! The spec documents none of these DTOs' fields: the ones their filters imply are typed as
//! `Option`, everything else is kept in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AssetStatusFilter, VendorId};
use crate::List;

/// A customer directory record (`PublicApiCustomerDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Customer {
    /// The customer id.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// The ERP or source system (the `externalSystem` filter).
    #[serde(default)]
    pub external_system: Option<String>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A vendor (`PublicApiVendorDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Vendor {
    /// The vendor id (the parts list's `vendorId` filter).
    #[serde(default)]
    pub vendor_id: Option<VendorId>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A machine part or inventory item (`PublicApiInventoryPartDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InventoryPart {
    /// The part id.
    #[serde(default)]
    pub part_id: Option<String>,
    /// Its vendor.
    #[serde(default)]
    pub vendor_id: Option<VendorId>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The filters of [`Client::customers`](super::Client::customers); set them with the list's
/// methods.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CustomerFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    external_system: Option<String>,
}

impl List<Customer, CustomerFilter> {
    /// Only customers from this ERP or source system.
    pub fn external_system(self, system: impl Into<String>) -> Self {
        self.filter(|q| q.external_system = Some(system.into()))
    }
}

/// The filters of [`Client::inventory_parts`](super::Client::inventory_parts); set them with
/// the list's methods.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PartFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor_id: Option<VendorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<AssetStatusFilter>,
}

impl List<InventoryPart, PartFilter> {
    /// Only parts of this vendor.
    pub fn vendor_id(self, vendor_id: impl Into<VendorId>) -> Self {
        self.filter(|q| q.vendor_id = Some(vendor_id.into()))
    }

    /// Active, inactive or all.
    pub fn status(self, status: AssetStatusFilter) -> Self {
        self.filter(|q| q.status = Some(status))
    }
}
