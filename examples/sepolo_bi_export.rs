//! A BI export: a year of service visits and the service-performance report per calendar month,
//! written as CSV files under `target/sepolo_bi_export/`, the way a Power BI or warehouse job
//! pulls them.
//!
//! ```sh
//! cargo run --example sepolo_bi_export
//! SEPOLO_API_KEY=sep_live_… cargo run --example sepolo_bi_export
//! ```

#[path = "common/sepolo.rs"]
mod sepolo_env;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, SecondsFormat, SubsecRound, TimeZone, Utc};
use futures::TryStreamExt;
use iot_sdk::sepolo::{ServicePerformance, ServiceVisit};
use serde_json::Value;

/// The visit columns written first, in this order; any other field the API sends follows.
const VISIT_COLUMNS: [&str; 8] = [
    "serviceVisitId",
    "assetId",
    "customerId",
    "startUtc",
    "endUtc",
    "stateText",
    "cost",
    "estimatedCost",
];

/// A JSON value as CSV text: strings as they are, `null` as an empty field, objects and arrays
/// as JSON.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A CSV writer of `path` (the `csv` crate quotes fields as RFC 4180 says), with CRLF line
/// ends, as RFC 4180 and Excel expect.
fn csv_writer(path: &Path) -> csv::Result<csv::Writer<std::fs::File>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_path(path)
}

/// A visit as a flat JSON object (its typed id and every other field).
fn visit_object(v: &ServiceVisit) -> serde_json::Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

fn write_visits(path: &Path, visits: &[ServiceVisit]) -> csv::Result<usize> {
    let rows: Vec<serde_json::Map<String, Value>> = visits.iter().map(visit_object).collect();
    let extra: BTreeSet<&String> = rows
        .iter()
        .flat_map(|r| r.keys())
        .filter(|k| !VISIT_COLUMNS.contains(&k.as_str()))
        .collect();
    let columns: Vec<String> = VISIT_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(extra.into_iter().cloned())
        .collect();
    let mut out = csv_writer(path)?;
    out.write_record(&columns)?;
    for row in &rows {
        out.write_record(columns.iter().map(|c| cell(row.get(c))))?;
    }
    out.flush()?;
    Ok(rows.len())
}

fn write_performance(
    path: &Path,
    months: &[(DateTime<Utc>, DateTime<Utc>, ServicePerformance)],
) -> csv::Result<usize> {
    let mut out = csv_writer(path)?;
    let header = [
        "fromUtc",
        "toUtc",
        "totalVisits",
        "completedVisits",
        "openVisits",
        "estimatedCost",
        "actualCost",
    ];
    out.write_record(header)?;
    for (from, to, p) in months {
        out.write_record([
            from.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            to.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            p.total_visits.to_string(),
            p.completed_visits.to_string(),
            p.open_visits.to_string(),
            p.estimated_cost.to_string(),
            p.actual_cost.to_string(),
        ])?;
    }
    out.flush()?;
    Ok(months.len())
}

/// `[from, to)` cut at calendar-month boundaries (UTC).
fn months(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let (y, m) = if start.month() == 12 {
            (start.year() + 1, 1)
        } else {
            (start.year(), start.month() + 1)
        };
        let next = Utc
            .with_ymd_and_hms(y, m, 1, 0, 0, 0)
            .single()
            .unwrap_or(to)
            .min(to);
        out.push((start, next));
        start = next;
    }
    out
}

/// The error with the file it concerns.
fn io_error(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sepolo, _sim) = sepolo_env::client(50).await?;
    let to = Utc::now().trunc_subsecs(0);
    let from = to - Duration::days(365);

    let visits: Vec<ServiceVisit> = sepolo
        .service()
        .visits()
        .between(from, to)
        .page_size(500)
        .items()
        .try_collect()
        .await?;

    let mut performance = Vec::new();
    for (m_from, m_to) in months(from, to) {
        let p = sepolo
            .reporting()
            .service_performance()
            .between(m_from, m_to)
            .send()
            .await?;
        performance.push((m_from, m_to, p));
    }

    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sepolo_bi_export");
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let visits_path = dir.join("service_visits.csv");
    let perf_path = dir.join("service_performance.csv");
    let visit_rows =
        write_visits(&visits_path, &visits).map_err(|e| io_error(&visits_path, e.into()))?;
    let perf_rows =
        write_performance(&perf_path, &performance).map_err(|e| io_error(&perf_path, e.into()))?;

    println!(
        "\nService visits {} to {}:",
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d")
    );
    println!("  {}  ({visit_rows} rows)", visits_path.display());
    println!("  {}  ({perf_rows} monthly rows)", perf_path.display());
    let counted: u64 = performance.iter().map(|(_, _, p)| p.total_visits).sum();
    let actual: f64 = performance.iter().map(|(_, _, p)| p.actual_cost).sum();
    println!(
        "\nThe report counts {counted} visits ({}), with an actual cost of {actual:.0}.",
        if counted == visit_rows as u64 {
            "the same as the export"
        } else {
            "not the export's count: did visits change meanwhile?"
        }
    );
    Ok(())
}
