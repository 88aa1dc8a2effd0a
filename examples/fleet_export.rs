//! A year of readings of every device of the three vendors to one CSV (or Parquet), with a
//! progress bar. Interrupt it (Ctrl-C) and run it again with the same arguments: it continues
//! from its checkpoint, and every reading is in the file once. Windows a vendor can never serve
//! (SiliconWit beyond its look-back) are listed as unreachable, not retried.
//!
//! `cargo run --example fleet_export -- [--out DIR] [--days N] [--format csv|parquet]`
//! (defaults: `fleet-export/`, 365, csv; `--format parquet` needs the feature:
//! `cargo run --example fleet_export --features parquet -- --format parquet`). The real APIs whose keys are set, the built-in
//! simulators for the others. The range ends at the start of the current hour, so a run resumed
//! within the hour asks for the same range (a later one is refused as another export: delete the
//! directory, or pass the same range).

#[path = "common/fleet.rs"]
mod fleet_env;

use std::io::Write;
use std::path::PathBuf;

use chrono::{DurationRound, TimeDelta, Utc};
use iot_sdk::fleet::ExportFormat;

fn usage() -> ! {
    eprintln!("usage: fleet_export [--out DIR] [--days N] [--format csv|parquet]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut out, mut days, mut format) =
        (PathBuf::from("fleet-export"), 365i64, ExportFormat::Csv);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--out", Some(v)) => out = PathBuf::from(v),
            ("--days", Some(v)) => days = v.parse().unwrap_or_else(|_| usage()),
            ("--format", Some(v)) => {
                format = match v.as_str() {
                    "csv" => ExportFormat::Csv,
                    #[cfg(feature = "parquet")]
                    "parquet" => ExportFormat::Parquet,
                    #[cfg(not(feature = "parquet"))]
                    "parquet" => {
                        eprintln!(
                            "--format parquet needs the SDK's `parquet` feature: \
                             cargo run --example fleet_export --features parquet -- --format parquet"
                        );
                        std::process::exit(2)
                    }
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    if days < 1 {
        usage();
    }
    let (fleet, _sims) = fleet_env::fleet().await?;
    let to = Utc::now().duration_trunc(TimeDelta::hours(1))?;
    let from = to - TimeDelta::days(days);
    println!("Exporting [{from}, {to}) to {}", out.display());
    let report = fleet
        .export(from, to)
        .progress(|p| {
            let width = 40u64;
            let filled = p.units_done.saturating_mul(width) / p.units_total.max(1);
            let bar: String = (0..width)
                .map(|i| if i < filled { '#' } else { '-' })
                .collect();
            print!(
                "\r  [{bar}] {}/{} units, {} readings, {} failed, {} unreachable",
                p.units_done, p.units_total, p.rows, p.failed, p.unreachable
            );
            let _ = std::io::stdout().flush();
        })
        .run(&out, format)
        .await?;
    println!();
    println!(
        "{} {} readings in {} ({} units written by this run{})",
        if report.resumed { "Resumed:" } else { "Done:" },
        report.rows,
        report.path.display(),
        report.units_written,
        if report.is_complete() {
            ""
        } else {
            "; incomplete"
        },
    );
    // Failures by source, with the first reason: run again to retry them.
    let mut by_source: std::collections::BTreeMap<String, (usize, String)> = Default::default();
    for f in &report.failures {
        let e = by_source
            .entry(f.error.source.to_string())
            .or_insert((0, f.to_string()));
        e.0 += 1;
    }
    for (source, (n, first)) in by_source {
        println!("  {source}: {n} units failed, e.g. {first}");
    }
    // Unreachable units by source: final, never retried.
    if !report.unreachable.is_empty() {
        println!(
            "  {} units out of their vendor's reach ({} found by this run): final, not retried",
            report.unreachable.len(),
            report.unreachable_new
        );
    }
    let mut unreachable: std::collections::BTreeMap<&str, Vec<&iot_sdk::fleet::UnreachableUnit>> =
        Default::default();
    for u in &report.unreachable {
        unreachable.entry(u.source.as_str()).or_default().push(u);
    }
    for (source, units) in unreachable {
        let first = units.iter().map(|u| u.window.0).min();
        let last = units.iter().map(|u| u.window.1).max();
        if let (Some(first), Some(last), Some(example)) = (first, last, units.first()) {
            println!(
                "  {source}: {} units in [{first}, {last}), e.g. {example}",
                units.len()
            );
        }
    }
    if !report.is_complete() {
        println!(
            "  {} units pending: run again with the same arguments to retry them",
            report.pending
        );
    }
    Ok(())
}
