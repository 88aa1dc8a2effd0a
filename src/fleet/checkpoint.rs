//! The checkpoint of an export: a small JSON file beside the output, replaced atomically after
//! every completed unit of work.
//!
//! Format (`version` 1; a change to it is a new version, and a checkpoint of another version is
//! refused rather than misread):
//!
//! ```json
//! {
//!   "version": 1,
//!   "spec": {"from": "…", "to": "…", "unit_secs": 86400, "format": "csv",
//!            "metrics": null, "sources": [{"label": "sgt", "vendor": "sgt", "metrics": ["power_kw"]}]},
//!   "devices": {"sgt": ["dev_1", "dev_2"], "sepolo": null},
//!   "late": {},
//!   "next_unit": 17,
//!   "pending": [{"window": 3, "source": "sgt", "device": "dev_2"}],
//!   "unreachable": [{"window": 0, "source": "siliconwit", "device": "d1",
//!                    "reachable_from": "…"}],
//!   "data_len": 123456,
//!   "rows": 4242,
//!   "parts": 0,
//!   "assembled": false
//! }
//! ```
//!
//! `devices` is the plan of the first run (a source whose list failed is `null`; its devices,
//! once listed by a later run, are in `late`). Units are numbered window-major: for each window,
//! for each source in order, for each of its devices (sorted by id). `next_unit` units of that
//! order are done or in `pending` (failed, or of a late source: done after the main order).
//! `unreachable` lists the units a vendor can never serve (a window out of its reach: done,
//! with no rows, and never retried), with the oldest instant the vendor's answer reached.
//! `data_len` is the data file's length when the checkpoint was written (CSV), or the total
//! length of the parts (Parquet). `parts` (Parquet) is the number of durable parts
//! (`readings.parquet.parts/part-000000.parquet`, …); `assembled` (Parquet) says that the
//! final file was built from them after the last unit, and the parts may be gone. Fields
//! added after the first release of version 1 (`unreachable`, `parts`, `assembled`) are read
//! as empty, zero and `false` when absent.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The checkpoint format's version.
pub(crate) const VERSION: u32 = 1;

/// What an export was asked for: a checkpoint of another spec is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub(crate) from: DateTime<Utc>,
    pub(crate) to: DateTime<Utc>,
    pub(crate) unit_secs: i64,
    pub(crate) format: String,
    pub(crate) metrics: Option<Vec<String>>,
    pub(crate) sources: Vec<SourceSpec>,
}

/// One source of a [`Spec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SourceSpec {
    pub(crate) label: String,
    pub(crate) vendor: String,
    pub(crate) metrics: Option<Vec<String>>,
}

/// A unit of work: one device of one source over one window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct UnitKey {
    pub(crate) window: u64,
    pub(crate) source: String,
    pub(crate) device: String,
}

/// A unit a vendor can never serve: done, with no rows, not retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Unreachable {
    #[serde(flatten)]
    pub(crate) unit: UnitKey,
    /// The oldest instant the vendor's answer covered.
    pub(crate) reachable_from: DateTime<Utc>,
}

/// Where an export stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) version: u32,
    pub(crate) spec: Spec,
    pub(crate) devices: BTreeMap<String, Option<Vec<String>>>,
    #[serde(default)]
    pub(crate) late: BTreeMap<String, Vec<String>>,
    pub(crate) next_unit: u64,
    #[serde(default)]
    pub(crate) pending: Vec<UnitKey>,
    #[serde(default)]
    pub(crate) unreachable: Vec<Unreachable>,
    pub(crate) data_len: u64,
    pub(crate) rows: u64,
    #[serde(default)]
    pub(crate) parts: u64,
    #[serde(default)]
    pub(crate) assembled: bool,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::invalid_input(format!("{what} {}: {e}", path.display()))
}

/// The temporary file a checkpoint is written to before it replaces the old one.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads a checkpoint, `None` when there is none.
pub(crate) fn load(path: &Path) -> Result<Option<Checkpoint>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("cannot read the checkpoint", path, e)),
    };
    let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
        Error::invalid_input(format!(
            "the checkpoint {} does not parse: {e}",
            path.display()
        ))
    })?;
    if cp.version != VERSION {
        return Err(Error::invalid_input(format!(
            "the checkpoint {} is of version {}, this SDK writes {VERSION}",
            path.display(),
            cp.version
        )));
    }
    Ok(Some(cp))
}

/// Writes a checkpoint atomically: a temporary file in the same directory, fsync, rename over
/// the old one, fsync the directory. `between` runs after the temporary file is durable and
/// before the rename (the crash hook of the tests).
pub(crate) fn store(path: &Path, cp: &Checkpoint, between: impl FnOnce()) -> Result<()> {
    let tmp = temp_path(path);
    let json = serde_json::to_vec(cp)
        .map_err(|e| Error::invalid_input(format!("cannot encode the checkpoint: {e}")))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| io("cannot create", &tmp, e))?;
    f.write_all(&json)
        .map_err(|e| io("cannot write", &tmp, e))?;
    f.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
    drop(f);
    between();
    fs::rename(&tmp, path).map_err(|e| io("cannot replace", path, e))?;
    sync_dir(path)
}

/// Makes a rename or a new file in `path`'s directory durable.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync the directory", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PageToken;
    use proptest::prelude::{Strategy, any, prop_assert_eq, prop_oneof, proptest};

    fn sample() -> Checkpoint {
        Checkpoint {
            version: VERSION,
            spec: Spec {
                from: "2026-01-01T00:00:00Z".parse().unwrap(),
                to: "2026-01-02T00:00:00Z".parse().unwrap(),
                unit_secs: 3600,
                format: "csv".into(),
                metrics: None,
                sources: vec![SourceSpec {
                    label: "sgt".into(),
                    vendor: "sgt".into(),
                    metrics: Some(vec!["power_kw".into()]),
                }],
            },
            devices: BTreeMap::from([("sgt".to_owned(), Some(vec!["dev_1".to_owned()]))]),
            late: BTreeMap::new(),
            next_unit: 3,
            pending: vec![UnitKey {
                window: 1,
                source: "sgt".into(),
                device: "dev_1".into(),
            }],
            unreachable: vec![Unreachable {
                unit: UnitKey {
                    window: 0,
                    source: "sgt".into(),
                    device: "dev_2".into(),
                },
                reachable_from: "2026-01-01T06:00:00Z".parse().unwrap(),
            }],
            data_len: 99,
            rows: 7,
            parts: 2,
            assembled: false,
        }
    }

    #[test]
    fn a_checkpoint_is_replaced_atomically_and_read_back() {
        let dir = std::env::temp_dir().join(format!("iot-sdk-cp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("readings.csv.checkpoint.json");
        assert_eq!(load(&path).unwrap(), None);
        let mut cp = sample();
        store(&path, &cp, || {}).unwrap();
        assert_eq!(load(&path).unwrap(), Some(cp.clone()));
        // A crash between the temporary file and the rename leaves the old checkpoint whole.
        cp.next_unit = 4;
        store(&path, &cp, || {
            assert!(temp_path(&path).exists());
            assert_eq!(load(&path).unwrap().unwrap().next_unit, 3);
        })
        .unwrap();
        assert_eq!(load(&path).unwrap().unwrap().next_unit, 4);
        assert!(!temp_path(&path).exists());
        // Another version is refused, garbage is an error, never a panic.
        let mut other = serde_json::to_value(&cp).unwrap();
        other["version"] = 2.into();
        fs::write(&path, other.to_string()).unwrap();
        assert!(matches!(load(&path), Err(Error::InvalidInput(_))));
        fs::write(&path, b"{\"version\": 1").unwrap();
        assert!(matches!(load(&path), Err(Error::InvalidInput(_))));
        // A checkpoint written before `unreachable`, `parts` and `assembled` existed reads them
        // as empty, zero and false.
        let mut old = serde_json::to_value(sample()).unwrap();
        for field in ["unreachable", "parts", "assembled"] {
            old.as_object_mut().unwrap().remove(field);
        }
        fs::write(&path, old.to_string()).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert!(back.unreachable.is_empty() && back.parts == 0 && !back.assembled);
        assert_eq!(back.pending, sample().pending);
        fs::write(&path, b"{\"version\": 1").unwrap();
        assert!(matches!(load(&path), Err(Error::InvalidInput(_))));
        fs::remove_dir_all(&dir).unwrap();
    }

    fn token() -> impl Strategy<Value = PageToken> {
        prop_oneof![
            any::<String>().prop_map(PageToken::Cursor),
            any::<u64>().prop_map(PageToken::Offset),
        ]
    }

    proptest! {
        #![proptest_config(crate::tests::proptest_config())]

        /// Any page token survives a JSON round trip, in the documented format.
        #[test]
        fn page_tokens_round_trip(t in token()) {
            let json = serde_json::to_value(&t).unwrap();
            match &t {
                PageToken::Cursor(c) => prop_assert_eq!(&json, &serde_json::json!({"cursor": c})),
                PageToken::Offset(o) => prop_assert_eq!(&json, &serde_json::json!({"offset": o})),
            }
            let back: PageToken = serde_json::from_value(json).unwrap();
            prop_assert_eq!(back, t);
        }

        /// Any checkpoint survives a round trip through its file; any bytes in the file are a
        /// checkpoint or an error, never a panic.
        #[test]
        fn checkpoints_round_trip(
            next in any::<u64>(), len in any::<u64>(), rows in any::<u64>(),
            device in any::<String>(), garbage in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let dir = std::env::temp_dir().join(format!("iot-sdk-cpp-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            let path = dir.join("cp.json");
            let mut cp = sample();
            cp.next_unit = next;
            cp.data_len = len;
            cp.rows = rows;
            cp.pending[0].device = device;
            store(&path, &cp, || {}).unwrap();
            prop_assert_eq!(load(&path).unwrap(), Some(cp));
            fs::write(&path, &garbage).unwrap();
            let _ = load(&path);
        }
    }
}
