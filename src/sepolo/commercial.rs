//! Customers, vendors and inventory parts.
//!
//! The spec documents none of these DTOs' fields: the ones their filters imply are typed as
//! `Option`, everything else is kept in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AssetStatusFilter, List, VendorId};

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

/// Marker for `GET /api/v1/customers`.
#[derive(Debug)]
pub enum CustomersList {}
/// Marker for `GET /api/v1/vendors`.
#[derive(Debug)]
pub enum VendorsList {}
/// Marker for `GET /api/v1/inventory/parts`.
#[derive(Debug)]
pub enum PartsList {}

impl List<Customer, CustomersList> {
    /// Only customers from this ERP or source system.
    pub fn external_system(self, system: impl Into<String>) -> Self {
        self.param("externalSystem", system.into())
    }
}

impl List<InventoryPart, PartsList> {
    /// Only parts of this vendor.
    pub fn vendor_id(self, vendor_id: impl Into<VendorId>) -> Self {
        self.param("vendorId", vendor_id.into())
    }

    /// Active, inactive or all.
    pub fn status(self, status: AssetStatusFilter) -> Self {
        self.param("status", status)
    }
}
