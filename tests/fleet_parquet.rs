//! Parquet exports (feature `parquet`) against the three simulators: the Parquet read back with
//! the parquet crate equals the CSV of the same range, row for row and column for column; an
//! export killed at 26 points (between a part and the checkpoint, inside the checkpoint's
//! replace, while the final file is built, …) and resumed is byte-identical to an uninterrupted
//! run.

#[path = "common/fleet.rs"]
mod fleet_sims;

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, Float64Array};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, SecondsFormat, TimeDelta};
use fleet_sims::{
    child_orders, clients_of, crash_child, crash_points, fleet, range, start, temp_dir,
};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const UNIT: TimeDelta = TimeDelta::hours(2);

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The rows of a Parquet export, each column as the CSV writes it (null as empty).
fn parquet_rows(path: &Path) -> Vec<Vec<String>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = reader.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "source",
            "vendor",
            "device_id",
            "metric",
            "ts",
            "value",
            "unit",
            "raw"
        ]
    );
    assert_eq!(
        schema.field(4).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(schema.field(5).data_type(), &DataType::Float64);
    assert!(!schema.field(0).is_nullable() && schema.field(5).is_nullable());
    let mut out = Vec::new();
    for batch in reader.build().unwrap() {
        let b = batch.unwrap();
        let s = |i: usize| b.column(i).as_string::<i32>().clone();
        let (source, vendor, device, metric, unit, raw) = (s(0), s(1), s(2), s(3), s(6), s(7));
        let ts = b
            .column(4)
            .as_primitive::<TimestampMicrosecondType>()
            .clone();
        let value = b
            .column(5)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .clone();
        let opt = |a: &arrow_array::StringArray, r: usize| {
            if a.is_null(r) {
                String::new()
            } else {
                a.value(r).to_owned()
            }
        };
        for r in 0..b.num_rows() {
            out.push(vec![
                source.value(r).to_owned(),
                vendor.value(r).to_owned(),
                device.value(r).to_owned(),
                metric.value(r).to_owned(),
                DateTime::from_timestamp_micros(ts.value(r))
                    .unwrap()
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true),
                if value.is_null(r) {
                    String::new()
                } else {
                    value.value(r).to_string()
                },
                opt(&unit, r),
                opt(&raw, r),
            ]);
        }
    }
    out
}

#[tokio::test]
async fn a_parquet_export_read_back_equals_the_csv() {
    let sims = start().await;
    let c = clients_of(&sims);
    let f = fleet(&c);
    let (from, to) = range();
    let csv_dir = temp_dir("csv");
    let csv = f.export(from, to).unit(UNIT).csv(&csv_dir).await.unwrap();
    assert!(csv.is_complete());
    let dir = temp_dir("equal");
    // Small parts: many of them, assembled into one file.
    let report = f
        .export(from, to)
        .unit(UNIT)
        .parquet_part_rows(500)
        .parquet(&dir)
        .await
        .unwrap();
    assert!(
        report.is_complete() && !report.resumed,
        "{:?}",
        report.failures
    );
    assert_eq!(report.path, dir.join("readings.parquet"));
    assert_eq!(report.rows, csv.rows);
    assert!(
        !dir.join("readings.parquet.parts").exists(),
        "parts removed when complete"
    );
    let want = csv_rows(&csv.path);
    assert!(want.len() > 1_000);
    assert_eq!(
        parquet_rows(&report.path),
        want,
        "every row and column, in order"
    );
    // Another part size writes the same file; a re-run writes nothing.
    let bytes = std::fs::read(&report.path).unwrap();
    let dir2 = temp_dir("equal-big");
    let big = f.export(from, to).unit(UNIT).parquet(&dir2).await.unwrap();
    assert_eq!(std::fs::read(&big.path).unwrap(), bytes);
    let again = f
        .export(from, to)
        .unit(UNIT)
        .parquet_part_rows(500)
        .parquet(&dir)
        .await
        .unwrap();
    assert!(again.resumed && again.is_complete());
    assert_eq!(again.units_written, 0);
    assert_eq!(std::fs::read(&report.path).unwrap(), bytes);
    for d in [dir, dir2, csv_dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// Runs in a child process when `FLEET_CHILD` is set: the Parquet export into `FLEET_DIR`,
/// aborting at `FLEET_CRASH` (`unit:phase`).
#[tokio::test]
async fn child_parquet_export() {
    let Some(child) = child_orders() else {
        return;
    };
    let report = fleet(&child.clients)
        .export(child.from, child.to)
        .unit(UNIT)
        .parquet_part_rows(1)
        .crash_at(child.point)
        .parquet(&child.dir)
        .await;
    println!(
        "export ended without crashing: {:?}",
        report.map(|r| r.rows)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parquet_export_killed_at_26_points_and_resumed_is_byte_identical() {
    let sims = start().await;
    let c = clients_of(&sims);
    let f = fleet(&c);
    let (from, to) = range();
    let clean = temp_dir("clean-pq");
    let reference = f
        .export(from, to)
        .unit(UNIT)
        .parquet_part_rows(1)
        .parquet(&clean)
        .await
        .unwrap();
    assert!(reference.is_complete());
    let total = reference.units_total;
    assert!(total >= 48, "{total}");
    let want = std::fs::read(&reference.path).unwrap();

    let dir = temp_dir("killed-pq");
    let mut points = crash_points(24, total);
    // Then while the final file is built: its temporary durable, then renamed.
    points.push((0, "assemble"));
    points.push((0, "assembled"));
    for point in points {
        crash_child("child_parquet_export", &sims, &dir, (from, to), point).await;
        let cp = std::fs::read(dir.join("readings.parquet.checkpoint.json")).unwrap();
        let cp: serde_json::Value = serde_json::from_slice(&cp).unwrap();
        let parts = cp["parts"].as_u64().unwrap();
        if parts > 0 && !cp["assembled"].as_bool().unwrap() {
            let last = dir.join(format!(
                "readings.parquet.parts/part-{:06}.parquet",
                parts - 1
            ));
            assert!(
                last.is_file(),
                "every part the checkpoint counts is on disk"
            );
        }
    }
    let resumed = f
        .export(from, to)
        .unit(UNIT)
        .parquet_part_rows(1)
        .parquet(&dir)
        .await
        .unwrap();
    assert!(resumed.resumed && resumed.is_complete());
    let got = std::fs::read(&resumed.path).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "the resumed file is byte-identical to the uninterrupted one"
    );
    assert_eq!(resumed.rows, reference.rows);
    assert!(!dir.join("readings.parquet.parts").exists());
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&clean).unwrap();
}
