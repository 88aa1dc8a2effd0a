//! Every configured alert with its condition, severity and recent trigger history.
//!
//! ```sh
//! cargo run --example siliconwit_alerts
//! SILICONWIT_API_KEY=swk_… cargo run --example siliconwit_alerts
//! ```

#[path = "common/mod.rs"]
mod common;
#[path = "common/siliconwit.rs"]
mod siliconwit_env;

use futures::{StreamExt, TryStreamExt};
use iot_sdk::siliconwit::{Alert, AlertEvent, AlertValue};

/// Trigger events shown per alert.
const RECENT: u32 = 5;

/// A condition value as a person writes it: `40`, `21.5`, `"open"`.
fn show_value(v: &AlertValue) -> String {
    match v {
        AlertValue::Number(n) => n.to_string(),
        AlertValue::Bool(b) => b.to_string(),
        AlertValue::Text(t) => format!("{t:?}"),
        AlertValue::Other(v) => v.to_string(),
    }
}

fn print_alert(alert: &Alert, history: &[AlertEvent]) {
    let c = &alert.condition;
    println!(
        "\n{}  {}  [{}]  {}",
        alert.id,
        alert.name.as_deref().unwrap_or("(unnamed)"),
        alert.severity.as_ref().map_or("-", |s| s.as_str()),
        if alert.enabled == Some(false) {
            "disabled"
        } else {
            "enabled"
        },
    );
    println!(
        "  when {} {} {} on {}  (actions: {}; cooldown {} s)",
        c.field,
        c.operator,
        show_value(&c.value),
        alert.device_id.as_ref().map_or("-", |d| d.as_str()),
        if alert.actions.is_empty() {
            "none".to_owned()
        } else {
            alert.actions.join(", ")
        },
        alert.cooldown.unwrap_or(0),
    );
    if history.is_empty() {
        println!("  never triggered");
    }
    for e in history {
        println!(
            "  {}  {:>8}  {}",
            e.triggered_at.format("%Y-%m-%d %H:%M"),
            e.condition_value
                .as_ref()
                .map_or("-".to_owned(), show_value),
            match e.acknowledged_at {
                Some(at) => format!("acknowledged {}", at.format("%Y-%m-%d %H:%M")),
                None if e.acknowledged => "acknowledged".to_owned(),
                None => "NOT ACKNOWLEDGED".to_owned(),
            },
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sw, _sim) = siliconwit_env::client(10).await?;

    let alerts: Vec<Alert> = sw.alerts().list().limit(100).items().try_collect().await?;
    println!("{} alerts", alerts.len());

    // Histories four at a time, printed in list order.
    let mut with_history = futures::stream::iter(alerts)
        .map(|alert| {
            let sw = sw.clone();
            async move {
                let history = sw.alerts().history(&alert.id, Some(RECENT)).await?;
                Ok::<_, iot_sdk::Error>((alert, history))
            }
        })
        .buffered(4);
    let mut unacknowledged = 0;
    while let Some((alert, history)) = with_history.try_next().await? {
        unacknowledged += history.iter().filter(|e| !e.acknowledged).count();
        print_alert(&alert, &history);
    }
    println!("\n{unacknowledged} recent triggers not acknowledged");
    common::show_rate_limit(sw.last_rate_limit());
    Ok(())
}
