//! Reading a client's settings from environment variables.

use crate::error::{Error, Result};

/// A non-blank value from an environment lookup.
pub(crate) fn env_value(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).filter(|v| !v.trim().is_empty())
}

/// A required non-blank value from an environment lookup; its absence is a `Config` error.
pub(crate) fn env_required(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<String> {
    env_value(get, name).ok_or_else(|| Error::config(format!("{name} is not set")))
}
