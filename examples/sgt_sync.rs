//! Incremental device sync with `updated_since`: a full read once, then only what changed.
//!
//! ```sh
//! cargo run --example sgt_sync
//! ```

#[path = "common/mod.rs"]
mod common;
#[path = "common/sgt.rs"]
mod sgt_env;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use iot_sdk::sgt::{Device, DeviceUpdate};

/// The local copy a sync job keeps: devices by id, and the newest `updated_at` seen.
#[derive(Default)]
struct Mirror {
    devices: HashMap<String, Device>,
    watermark: Option<DateTime<Utc>>,
}

impl Mirror {
    fn apply(&mut self, d: Device) {
        if let Some(u) = d.updated_at {
            self.watermark = Some(self.watermark.map_or(u, |w| w.max(u)));
        }
        self.devices.insert(d.id.to_string(), d);
    }
}

async fn sync(sgt: &iot_sdk::sgt::Client, mirror: &mut Mirror) -> iot_sdk::Result<usize> {
    let mut list = sgt.devices().list().limit(500);
    if let Some(w) = mirror.watermark {
        list = list.updated_since(w);
    }
    let mut changes = list.items();
    let mut n = 0;
    while let Some(d) = changes.try_next().await? {
        mirror.apply(d);
        n += 1;
    }
    Ok(n)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sgt, sim) = sgt_env::client(1_200).await?;
    let mut mirror = Mirror::default();

    let n = sync(&sgt, &mut mirror).await?;
    println!("full sync: {n} devices, watermark {:?}", mirror.watermark);

    let n = sync(&sgt, &mut mirror).await?;
    println!("second sync, nothing changed: {n} devices");

    if sim.is_some() {
        // Against the simulator, change two devices so the next sync has something to fetch.
        let ids: Vec<String> = mirror.devices.keys().take(2).cloned().collect();
        for id in &ids {
            sgt.devices()
                .modify(id.as_str(), |d| {
                    Some(DeviceUpdate::new().name(format!("{} (renamed)", d.name)))
                })
                .await?;
        }
        let n = sync(&sgt, &mut mirror).await?;
        println!("after renaming {} devices: {n} fetched", ids.len());
        for id in &ids {
            println!("  {id}: {}", mirror.devices[id].name);
        }
    }
    println!("mirror holds {} devices", mirror.devices.len());
    Ok(())
}
