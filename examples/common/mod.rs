//! Shared by the examples.
#![allow(dead_code)]

/// One line per rate-limit field the server sent.
pub fn show_rate_limit(rl: Option<iot_sdk::RateLimit>) {
    match rl {
        None => println!("  (no rate-limit headers seen)"),
        Some(rl) => {
            if let (Some(l), Some(r)) = (rl.limit, rl.remaining) {
                println!("  {r} of {l} requests left in this window");
            }
            if let Some(reset) = rl.reset_after {
                println!("  window resets in {} s", reset.as_secs());
            }
            if let (Some(l), Some(r)) = (rl.daily_limit, rl.daily_remaining) {
                println!("  {r} of {l} requests left today");
            }
        }
    }
}

/// Whether `var` is set to something other than blanks.
pub fn is_set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}
