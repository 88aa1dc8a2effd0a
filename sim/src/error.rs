//! The simulators' error type.

use std::io;
use std::net::SocketAddr;

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound (the port is taken, or not allowed).
    #[error("simulator could not listen on {addr}: {source}")]
    Bind {
        /// The address it tried to listen on (`127.0.0.1:PORT`).
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A builder setting is invalid (an empty key, a scale that is not finite and positive, a
    /// size over its maximum…); the text says which.
    #[error("invalid simulator setting: {0}")]
    InvalidSetting(String),
    /// The built-in data could not be prepared (a fixture that does not parse).
    #[error("simulator data could not be prepared: {0}")]
    Data(String),
}

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidSetting(message.into())
    }
}

/// `Result<T, iot_sdk_sim::Error>`.
pub type Result<T> = std::result::Result<T, Error>;
