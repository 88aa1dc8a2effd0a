//! [`Fleet`]: any number of clients as one, with per-source failure reporting.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use super::{Export, FleetDevice, FleetReading, FleetSource, MetricFilter, VendorKind};
use crate::error::Error;

/// A stream of a fleet: items of every source, or a [`SourceError`] when one source (or one
/// device of it) failed; the stream goes on with the rest after an error.
pub type FleetStream<T> = BoxStream<'static, Result<Sourced<T>, SourceError>>;

/// An item and the label of the source it came from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Sourced<T> {
    /// The source's label (see [`Source::label`]).
    pub source: Arc<str>,
    /// The item.
    pub item: T,
}

impl<T> Deref for Sourced<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

/// One source of a fleet failed: its label, its vendor, the device (when the failure was about
/// one device) and the error.
#[derive(Debug)]
#[non_exhaustive]
pub struct SourceError {
    /// The source's label.
    pub source: Arc<str>,
    /// Its vendor.
    pub vendor: VendorKind,
    /// The device, when the failure was about one device.
    pub device_id: Option<String>,
    /// What went wrong.
    pub error: Error,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source {} ({})", self.source, self.vendor)?;
        if let Some(d) = &self.device_id {
            write!(f, ", device {d}")?;
        }
        write!(f, ": {}", self.error)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A client in a fleet, with a label and the metrics to read by default.
#[derive(Clone)]
pub struct Source {
    label: Option<String>,
    pub(crate) client: Arc<dyn FleetSource>,
    pub(crate) metrics: MetricFilter,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("label", &self.label)
            .field("vendor", &self.client.vendor_kind())
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl Source {
    /// A client as a source: labelled by its vendor's name, every metric.
    pub fn new(client: impl FleetSource) -> Self {
        Source {
            label: None,
            client: Arc::new(client),
            metrics: MetricFilter::all(),
        }
    }

    /// Its label in errors, exports and checkpoints (default the vendor's name, with `-2`,
    /// `-3`, … for a second and third client of one vendor). Labels are unique in a fleet.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The metrics to read when a call asks for all of them (SGT needs this: it is queried
    /// per metric).
    #[must_use]
    pub fn metrics(mut self, metrics: MetricFilter) -> Self {
        self.metrics = metrics;
        self
    }
}

/// A source with its final label.
#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) label: Arc<str>,
    pub(crate) source: Source,
}

impl Member {
    pub(crate) fn vendor(&self) -> VendorKind {
        self.source.client.vendor_kind()
    }

    pub(crate) fn fail(&self, device_id: Option<&str>, error: Error) -> SourceError {
        SourceError {
            source: Arc::clone(&self.label),
            vendor: self.vendor(),
            device_id: device_id.map(str::to_owned),
            error,
        }
    }

    pub(crate) fn sourced<T>(&self, item: T) -> Sourced<T> {
        Sourced {
            source: Arc::clone(&self.label),
            item,
        }
    }

    fn devices(&self) -> FleetStream<FleetDevice> {
        let (ok, err) = (self.clone(), self.clone());
        self.source
            .client
            .fleet_devices()
            .map_ok(move |d| ok.sourced(d))
            .map_err(move |e| err.fail(None, e))
            .boxed()
    }
}

/// The latest readings of one device.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeviceLatest {
    /// The device.
    pub device: FleetDevice,
    /// The latest reading of each of its metrics.
    pub readings: Vec<FleetReading>,
}

/// Any number of clients, of any vendors (several keys of one vendor too), as one fleet.
///
/// Streams read the sources concurrently, at most [`Fleet::concurrency`] at once; each client
/// keeps its own retries, rate limits and pacing.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub(crate) members: Vec<Member>,
    pub(crate) concurrency: usize,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("label", &self.label)
            .field("source", &self.source)
            .finish()
    }
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

impl Fleet {
    /// An empty fleet.
    pub fn new() -> Self {
        Fleet {
            members: Vec::new(),
            concurrency: 4,
        }
    }

    /// Adds a client, labelled by its vendor.
    #[must_use]
    pub fn with(self, client: impl FleetSource) -> Self {
        self.with_source(Source::new(client))
    }

    /// Adds a source; a label already taken gets `-2`, `-3`, … appended.
    #[must_use]
    pub fn with_source(mut self, source: Source) -> Self {
        let base = source
            .label
            .clone()
            .unwrap_or_else(|| source.client.vendor_kind().as_str().to_owned());
        let mut label = base.clone();
        let mut n: u32 = 1;
        while self.members.iter().any(|m| *m.label == *label) {
            n = n.saturating_add(1);
            label = format!("{base}-{n}");
        }
        self.members.push(Member {
            label: label.into(),
            source,
        });
        self
    }

    /// How many sources are read at once (and, in an export, units in flight); at least 1,
    /// default 4.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The labels of the sources, in the order they were added.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| &*m.label)
    }

    /// Every device of every source. Sources are read concurrently, so their devices
    /// interleave; a source that fails yields one [`SourceError`] and ends, the others go on.
    ///
    /// ```no_run
    /// # async fn demo(fleet: iot_sdk::fleet::Fleet) {
    /// use futures::StreamExt;
    /// let mut devices = fleet.devices();
    /// while let Some(item) = devices.next().await {
    ///     match item {
    ///         Ok(d) => println!("{} {} {}", d.source, d.id, d.status),
    ///         Err(e) => eprintln!("{e}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn devices(&self) -> FleetStream<FleetDevice> {
        let members = self.members.clone();
        futures::stream::iter(members.into_iter().map(|m| m.devices()))
            .flatten_unordered(self.concurrency)
            .boxed()
    }

    /// Every device with the latest reading of each of its metrics (`metrics`, or each source's
    /// own when [`MetricFilter::all`]).
    pub fn latest(&self, metrics: &MetricFilter) -> FleetStream<DeviceLatest> {
        let per_source = self.members.clone().into_iter().map({
            let metrics = metrics.clone();
            move |m| {
                let metrics = metrics.or(&m.source.metrics);
                let member = m.clone();
                m.devices()
                    .map(move |item| {
                        let (member, metrics) = (member.clone(), metrics.clone());
                        async move {
                            let device = item?.item;
                            match member
                                .source
                                .client
                                .fleet_latest(&device.id, &metrics)
                                .await
                            {
                                Ok(readings) => {
                                    Ok(member.sourced(DeviceLatest { device, readings }))
                                }
                                Err(e) => Err(member.fail(Some(&device.id), e)),
                            }
                        }
                    })
                    .buffered(2)
                    .boxed()
            }
        });
        futures::stream::iter(per_source)
            .flatten_unordered(self.concurrency)
            .boxed()
    }

    /// The readings in `[from, to)` of every device of every source, device after device
    /// within a source, sources concurrently. `metrics` applies to every source; with
    /// [`MetricFilter::all`] each source reads its own [`Source::metrics`]. A failed device
    /// yields a [`SourceError`] naming it and the source goes on with its next device; a
    /// source whose device list fails yields one and ends.
    pub fn readings(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        metrics: &MetricFilter,
    ) -> FleetStream<FleetReading> {
        let metrics = metrics.clone();
        let per_source = self.members.clone().into_iter().map(move |m| {
            let metrics = metrics.or(&m.source.metrics);
            let member = m.clone();
            m.devices()
                .map(move |item| -> FleetStream<FleetReading> {
                    let device = match item {
                        Ok(d) => d.item,
                        Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
                    };
                    let (ok, err, id) = (member.clone(), member.clone(), device.id.clone());
                    member
                        .source
                        .client
                        .fleet_readings(&device.id, from, to, &metrics)
                        .map_ok(move |r| ok.sourced(r))
                        .map_err(move |e| err.fail(Some(&id), e))
                        .boxed()
                })
                .flatten()
                .boxed()
        });
        futures::stream::iter(per_source)
            .flatten_unordered(self.concurrency)
            .boxed()
    }

    /// An export of the readings in `[from, to)` of every device: see [`Export`].
    pub fn export(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Export {
        Export::new(self.clone(), from, to)
    }
}
