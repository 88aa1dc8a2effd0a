//! The SGT spec's own Python examples (aggregate query with retry, paging through all devices)
//! run unchanged against the simulator: any client that follows the spec works with it.
//! Needs `python3` with `requests`; without them the test says so and checks nothing else.

use std::process::Command;

use iot_sdk_sim::sgt::SgtSimulator;

fn python_with_requests() -> bool {
    Command::new("python3")
        .args(["-c", "import requests"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn the_spec_python_examples_run_against_the_simulator() {
    if !python_with_requests() {
        eprintln!("SKIPPED: python3 with the requests package is not installed");
        return;
    }
    let sim = SgtSimulator::builder()
        .fleet_size(448)
        .start()
        .await
        .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/sgt_spec_examples.py"
    );
    let (key, base) = (sim.api_key().to_owned(), sim.base_url().to_owned());
    // On a blocking thread, so the simulator keeps serving on this runtime meanwhile.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("SGT_API_KEY", key)
            .env("SGT_API_BASE", base)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    // 24 hours of 15-minute averages, then 450 devices over three pages of 200.
    let points = lines.iter().filter(|l| l.split(' ').count() == 2).count();
    let devices: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("dev_"))
        .copied()
        .collect();
    assert_eq!(points, 96, "{stdout}");
    assert_eq!(devices.len(), 450);
    assert!(devices.iter().any(|l| l.starts_with("dev_42 ")));
    assert_eq!(sim.stats().status(200), 1 + 3);
}
