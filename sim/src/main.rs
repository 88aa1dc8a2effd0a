//! `iot-sdk-sim`: runs a vendor API simulator on 127.0.0.1 until Ctrl-C, for trying the API
//! with curl or pointing any client (in any language) at it.
//!
//! ```text
//! cargo run -p iot-sdk-sim -- sgt --port 8080 --key K [--tenant T] [--fleet N]
//!                                 [--fault-rate F] [--latency-ms M]
//! cargo run -p iot-sdk-sim -- siliconwit --port 8080 --key swk_K [--devices N]
//!                                 [--plan starter|business|scale] [--fault-rate F]
//! cargo run -p iot-sdk-sim -- sepolo --port 8081 --key K [--size N]
//!                                 [--fault-rate F] [--latency-ms M]
//! ```
//!
//! Without `--port` it takes any free port; it prints the base URL, the key it accepts and a
//! curl command to paste.

use std::process::ExitCode;
use std::time::Duration;

use iot_sdk_sim::sepolo::SepoloSimulator;
use iot_sdk_sim::sgt::SgtSimulator;
use iot_sdk_sim::siliconwit::{Plan, SiliconWitSimulator};
use iot_sdk_sim::{Faults, Simulator, SimulatorBuilder};

const USAGE: &str = "\
usage: iot-sdk-sim <VENDOR> [options]

vendors:
  sgt                  the SGT Systems API (/v1 and /oauth2/token)
  sepolo               the Sepolo API (/api/v1; the key has every scope)
  siliconwit           the SiliconWit API (/v1; keys start with swk_)

options:
  --port PORT          port on 127.0.0.1 (default: any free port)
  --key KEY            API key to accept (default: the vendor's simulator key)
  --tenant TENANT      tenant the key is bound to (sgt; default acme-industries)
  --fleet N            generated devices beside the fixtures' (sgt; default 50)
  --size N             generated assets beside the fixtures' (sepolo; default 50)
  --devices N          devices of the account (siliconwit; default 5)
  --plan PLAN          starter, business, scale or free (siliconwit; default starter)
  --fault-rate F       fraction of requests answered 500/502/503, 0.0 to 1.0 (default 0)
  --latency-ms M       delay added to every request, in milliseconds (default 0)
  -h, --help           this help";

/// What the command line asked for (every vendor takes the same options).
#[derive(Debug, Default)]
struct Options {
    port: u16,
    key: Option<String>,
    tenant: Option<String>,
    fleet: Option<usize>,
    size: Option<usize>,
    devices: Option<usize>,
    plan: Option<String>,
    fault_rate: f64,
    latency_ms: u64,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut opts = Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--port" => {
                opts.port = value()?
                    .parse()
                    .map_err(|_| "--port must be a number from 0 to 65535".to_owned())?;
            }
            "--key" => opts.key = Some(value()?),
            "--tenant" => opts.tenant = Some(value()?),
            "--fleet" => {
                opts.fleet = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--fleet must be a whole number".to_owned())?,
                );
            }
            "--size" => {
                opts.size = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--size must be a whole number".to_owned())?,
                );
            }
            "--devices" => {
                opts.devices = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--devices must be a whole number".to_owned())?,
                );
            }
            "--plan" => opts.plan = Some(value()?),
            "--fault-rate" => {
                let rate: f64 = value()?
                    .parse()
                    .map_err(|_| "--fault-rate must be a number".to_owned())?;
                if !(0.0..=1.0).contains(&rate) {
                    return Err("--fault-rate must be between 0.0 and 1.0".to_owned());
                }
                opts.fault_rate = rate;
            }
            "--latency-ms" => {
                opts.latency_ms = value()?
                    .parse()
                    .map_err(|_| "--latency-ms must be a whole number".to_owned())?;
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(opts)
}

/// The settings every simulator takes: port, faults and key.
fn common<O>(builder: SimulatorBuilder<O>, opts: &Options) -> SimulatorBuilder<O> {
    let faults = Faults::none()
        .error_rate(opts.fault_rate)
        .latency(Duration::from_millis(opts.latency_ms));
    let builder = builder.port(opts.port).faults(faults);
    match &opts.key {
        Some(key) => builder.api_key(key),
        None => builder,
    }
}

/// The simulator, or the exit code of a start that failed (after saying why).
fn started<S>(
    result: iot_sdk_sim::Result<Simulator<S>>,
    vendor: &str,
) -> Result<Simulator<S>, ExitCode> {
    result.map_err(|e| {
        eprintln!("could not start the {vendor} simulator: {e}");
        ExitCode::FAILURE
    })
}

/// Serves until Ctrl-C, then stops and reports what the server saw.
async fn serve<S>(sim: Simulator<S>) -> ExitCode {
    println!();
    println!("Serving until Ctrl-C.");
    wait_for_ctrl_c().await;
    let stats = sim.stats();
    sim.shutdown().await;
    println!(
        "Stopped after {} requests ({} faults injected, {} rate limited).",
        stats.requests, stats.faults_injected, stats.rate_limited
    );
    ExitCode::SUCCESS
}

async fn run_sgt(opts: Options) -> ExitCode {
    let mut builder = common(SgtSimulator::builder(), &opts);
    if let Some(tenant) = &opts.tenant {
        builder = builder.tenant(tenant);
    }
    if let Some(fleet) = opts.fleet {
        builder = builder.fleet_size(fleet);
    }
    let sim = match started(builder.start().await, "SGT") {
        Ok(sim) => sim,
        Err(code) => return code,
    };
    println!("SGT Systems simulator");
    println!("  base URL:  {}", sim.base_url());
    println!("  token URL: {}", sim.token_url());
    println!("  API key:   {}", sim.api_key());
    println!("  tenant:    {}", sim.tenant());
    println!();
    println!(
        "curl -sS '{}/devices?limit=20' -H 'Authorization: Bearer {}' -H 'X-SGT-Tenant: {}'",
        sim.base_url(),
        sim.api_key(),
        sim.tenant()
    );
    serve(sim).await
}

async fn run_sepolo(opts: Options) -> ExitCode {
    if opts.tenant.is_some()
        || opts.fleet.is_some()
        || opts.devices.is_some()
        || opts.plan.is_some()
    {
        eprintln!(
            "error: --tenant, --fleet, --devices and --plan are for other vendors; sepolo takes --size\n\n{USAGE}"
        );
        return ExitCode::from(2);
    }
    let mut builder = common(SepoloSimulator::builder(), &opts);
    if let Some(size) = opts.size {
        builder = builder.organization_size(size);
    }
    let sim = match started(builder.start().await, "Sepolo") {
        Ok(sim) => sim,
        Err(code) => return code,
    };
    println!("Sepolo simulator");
    println!("  base URL:  {} (the API is under /api/v1)", sim.base_url());
    println!("  API key:   {}", sim.api_key());
    println!();
    println!(
        "curl -sS '{}/api/v1/assets?pageSize=20' -H 'X-Sepolo-Api-Key: {}'",
        sim.base_url(),
        sim.api_key()
    );
    serve(sim).await
}

async fn run_siliconwit(opts: Options) -> ExitCode {
    if opts.tenant.is_some() || opts.fleet.is_some() || opts.size.is_some() {
        eprintln!(
            "error: --tenant, --fleet and --size are for other vendors; siliconwit takes --devices\n\n{USAGE}"
        );
        return ExitCode::from(2);
    }
    let plan = match opts.plan.as_deref().map(|p| (p, Plan::named(p))) {
        None => Plan::starter(),
        Some((_, Some(plan))) => plan,
        Some((other, None)) => {
            eprintln!("error: unknown plan '{other}'; expected starter, business, scale or free");
            return ExitCode::from(2);
        }
    };
    let mut builder = common(SiliconWitSimulator::builder().plan(plan), &opts);
    if let Some(devices) = opts.devices {
        builder = builder.device_count(devices);
    }
    let sim = match started(builder.start().await, "SiliconWit") {
        Ok(sim) => sim,
        Err(code) => return code,
    };
    let plan = sim.plan();
    println!("SiliconWit simulator");
    println!("  base URL:  {}", sim.base_url());
    println!("  API key:   {}", sim.api_key());
    println!(
        "  plan:      {} ({} requests a minute, {} a day, {} days of telemetry)",
        plan.name, plan.per_minute, plan.daily, plan.data_retention_days
    );
    println!();
    println!(
        "curl -sS '{}/devices?limit=10' -H 'Authorization: Bearer {}'",
        sim.base_url(),
        sim.api_key()
    );
    serve(sim).await
}

async fn wait_for_ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("cannot listen for Ctrl-C ({e}); serving until killed");
        std::future::pending::<()>().await;
    }
}

fn main() -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("could not start the tokio runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((vendor, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if vendor == "-h" || vendor == "--help" || rest.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let opts = match parse_options(rest) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match vendor.as_str() {
        "sgt" => run_sgt(opts).await,
        "sepolo" => run_sepolo(opts).await,
        "siliconwit" => run_siliconwit(opts).await,
        other => {
            eprintln!(
                "error: unknown vendor '{other}'; this build simulates: sgt, sepolo, siliconwit"
            );
            ExitCode::from(2)
        }
    }
}
