//! Events and alarms: list them, acknowledge, clear, and attach operator notes.
//!
//! | call | endpoint |
//! |---|---|
//! | [`Events::list`] | `GET /events` (type, severity, acknowledged, limit ≤ 500, cursor) |
//! | [`Events::ack`] | `POST /events/{id}/ack` |
//! | [`Events::clear`] | `POST /events/{id}/clear` |
//! | [`Events::comment`] | `POST /events/{id}/comment` |
//!
//! The spec documents no event fields and no event types (it only says new types may appear at
//! any time), so the type is kept as text and every field beyond id, type, severity and
//! acknowledgement is optional.
//!
//! **Retries.** Acknowledging or clearing sets a state: doing it twice leaves the event as doing
//! it once does. [`Events::ack`] and [`Events::clear`] are therefore marked idempotent and are
//! retried after a timeout or a 504 like a `PUT`, so a lost response does not leave an operator
//! wondering whether the alarm was acknowledged. [`Events::comment`] is not: a repeat would add
//! the note to the audit trail twice.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Client, DeviceId, EventId, Wire};
use crate::List;
use crate::call::Call;
use crate::envelope::Envelope;
use crate::error::Error;
use crate::transport::{Request, Transport};

open_enum!(
    /// How serious an event is.
    Severity {
        /// For information only.
        Info => "info",
        /// Needs attention.
        Warning => "warning",
        /// Needs action now.
        Critical => "critical",
    }
);

/// An event or alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// `evt_…`.
    pub id: EventId,
    /// The event type (`alarm`, `device.offline`, …). The spec lists no types and says new ones
    /// may be added at any time, so it is text.
    #[serde(rename = "type")]
    pub event_type: String,
    /// How serious it is.
    pub severity: Severity,
    /// Whether an operator acknowledged it.
    pub acknowledged: bool,
    /// When it was acknowledged.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Whether it was cleared (not every response says).
    #[serde(default)]
    pub cleared: Option<bool>,
    /// When it was cleared.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub cleared_at: Option<DateTime<Utc>>,
    /// The device it concerns.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// A human-readable description.
    #[serde(default)]
    pub message: Option<String>,
    /// When it happened.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub occurred_at: Option<DateTime<Utc>>,
}

/// An operator note attached to an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventComment {
    /// The event the note belongs to.
    #[serde(default)]
    pub event_id: Option<EventId>,
    /// The note, as stored.
    #[serde(default)]
    pub note: Option<String>,
    /// When it was added.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub created_at: Option<DateTime<Utc>>,
}

/// The events of a client. Get one from [`Client::events`].
#[derive(Debug, Clone)]
pub struct Events {
    client: Client,
}

impl Events {
    pub(crate) fn new(client: Client) -> Self {
        Events { client }
    }

    fn transport(&self) -> Transport {
        self.client.transport.clone()
    }

    /// Lists events, filtered; `.send()` for one page, `.pages()` or `.items()` to stream.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use futures::TryStreamExt;
    /// use iot_sdk::sgt::Severity;
    /// let open: Vec<_> = sgt.events().list()
    ///     .severity(Severity::Critical)
    ///     .acknowledged(false)
    ///     .items()
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> List<Event, EventFilter> {
        self.client.list(&["events"], EventFilter::default())
    }

    /// Acknowledges an alarm; returns the event as it now is. Safe to repeat (see the module
    /// docs), so it is retried after a timeout.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// let e = sgt.events().ack("evt_01HW3K9F2XQ3R4").await?;
    /// assert!(e.acknowledged);
    /// # Ok(()) }
    /// ```
    pub fn ack(&self, id: impl Into<EventId>) -> Call<Event> {
        self.state_change(id.into(), "ack")
    }

    /// Clears an alarm manually; returns the event as it now is. Safe to repeat, so it is retried
    /// after a timeout.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// let e = sgt.events().clear("evt_01HW3K9F2XQ3R4").await?;
    /// # Ok(()) }
    /// ```
    pub fn clear(&self, id: impl Into<EventId>) -> Call<Event> {
        self.state_change(id.into(), "clear")
    }

    fn state_change(&self, id: EventId, action: &'static str) -> Call<Event> {
        let req = Request::new(Method::POST, segments!["events", id, action]).idempotent(true);
        Call::new(self.transport(), Ok(req), Wire::call)
    }

    /// Attaches an operator note for the audit trail. An empty or blank note is an
    /// [`Error::InvalidInput`] before anything is sent. Not retried after a possible delivery:
    /// the note would be stored twice.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// sgt.events()
    ///     .comment("evt_01HW3K9F2XQ3R4", "Checked on site: compressor restart.")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn comment(&self, id: impl Into<EventId>, note: impl Into<String>) -> Call<EventComment> {
        let id = id.into();
        let note = note.into();
        #[derive(Serialize)]
        struct Body<'a> {
            note: &'a str,
        }
        let req = if note.trim().is_empty() {
            Err(Error::invalid_input("the note is empty"))
        } else {
            Request::new(Method::POST, segments!["events", id, "comment"])
                .json(&Body { note: &note })
        };
        Call::new(self.transport(), req, Wire::call)
    }
}

/// The filters of [`Events::list`] (`GET /events`), AND-combined; set them with the list's
/// methods.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct EventFilter {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged: Option<bool>,
}

impl List<Event, EventFilter> {
    /// Only events of this type (`type=`).
    pub fn event_type(self, event_type: impl Into<String>) -> Self {
        self.filter(|q| q.event_type = Some(event_type.into()))
    }

    /// Only events of this severity.
    pub fn severity(self, severity: Severity) -> Self {
        self.filter(|q| q.severity = Some(severity))
    }

    /// Only acknowledged (`true`) or unacknowledged (`false`) events (`acknowledged=`).
    pub fn acknowledged(self, acknowledged: bool) -> Self {
        self.filter(|q| q.acknowledged = Some(acknowledged))
    }
}
