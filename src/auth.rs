//! Credentials and where they go on a request.
//!
//! An [`ApiKey`] is a secret: its `Debug` prints `ApiKey([REDACTED])`, it never appears in an
//! error or a log line, and the header that carries it is marked sensitive so that the HTTP stack
//! does not print it either. [`Auth`] says how the key is sent: `Authorization: Bearer …` or a
//! named header such as Sepolo's `X-Sepolo-Api-Key`, or through a [`TokenSource`] that hands out
//! short-lived tokens (OAuth2).

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// An API key or access token. Cheap to clone; redacted in `Debug`; has no `Display`.
///
/// ```
/// let key = iot_sdk::ApiKey::new("sgt_live_5h7k9w");
/// assert_eq!(format!("{key:?}"), "ApiKey([REDACTED])");
/// ```
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(SecretString::from(key.into()))
    }

    /// The key itself. Call this only to hand the key to something that needs it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.expose_secret().trim().is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

impl From<String> for ApiKey {
    fn from(s: String) -> Self {
        ApiKey::new(s)
    }
}

impl From<&str> for ApiKey {
    fn from(s: &str) -> Self {
        ApiKey::new(s)
    }
}

impl From<SecretString> for ApiKey {
    fn from(s: SecretString) -> Self {
        ApiKey(s)
    }
}

/// A source of bearer tokens that may expire, such as an OAuth2 session.
///
/// The transport asks for a token before each attempt. When the server answers 401, it calls
/// [`TokenSource::refresh`] once and repeats the request with the new token.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A currently valid token (the implementation refreshes ahead of expiry as it sees fit).
    fn token(&self) -> BoxFuture<'_, Result<ApiKey>>;

    /// Forces a refresh after the server rejected `rejected` with 401, and returns the new token.
    /// Implementations should not refresh again if the current token already differs from
    /// `rejected` (another request refreshed it meanwhile).
    fn refresh(&self, rejected: &ApiKey) -> BoxFuture<'_, Result<ApiKey>>;
}

/// How a request is authenticated.
#[derive(Clone)]
pub struct Auth(AuthKind);

#[derive(Clone)]
enum AuthKind {
    Bearer(ApiKey),
    Header(HeaderName, ApiKey),
    Source(Arc<dyn TokenSource>),
    /// No credentials: a client whose every request is sent `without_auth` (an OAuth2 token
    /// endpoint, where the client identifies itself in the form body).
    None,
}

impl Auth {
    /// `Authorization: Bearer <key>`.
    pub fn bearer(key: impl Into<ApiKey>) -> Self {
        Auth(AuthKind::Bearer(key.into()))
    }

    /// `<name>: <key>`, e.g. `X-Sepolo-Api-Key`. A name that is not a valid header name is a
    /// [`Error::Config`].
    pub fn header(name: &str, key: impl Into<ApiKey>) -> Result<Self> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::config(format!("`{name}` is not a valid HTTP header name")))?;
        Ok(Auth(AuthKind::Header(name, key.into())))
    }

    /// `Authorization: Bearer <token>` with tokens from `source`, refreshed once on a 401.
    pub fn token_source(source: Arc<dyn TokenSource>) -> Self {
        Auth(AuthKind::Source(source))
    }

    /// No credentials at all, for a transport that only talks to an OAuth2 token endpoint. A
    /// request that asks for credentials on such a transport fails with [`Error::Config`] instead
    /// of going out with an empty `Authorization` header.
    pub(crate) fn none() -> Self {
        Auth(AuthKind::None)
    }

    /// Checks the static key before a client is built: not empty, and valid in a header.
    pub(crate) fn validate(&self) -> Result<()> {
        let key = match &self.0 {
            AuthKind::Bearer(k) | AuthKind::Header(_, k) => k,
            AuthKind::Source(_) | AuthKind::None => return Ok(()),
        };
        if key.is_empty() {
            return Err(Error::config("the API key is empty"));
        }
        header_value(self.is_bearer(), key).map(drop)
    }

    fn is_bearer(&self) -> bool {
        !matches!(self.0, AuthKind::Header(..))
    }

    /// The header to put on the next attempt, and the key it carries (to hand back on a 401).
    pub(crate) async fn header_for_attempt(&self) -> Result<(HeaderName, HeaderValue, ApiKey)> {
        let (name, key) = match &self.0 {
            AuthKind::Bearer(k) => (AUTHORIZATION, k.clone()),
            AuthKind::Header(n, k) => (n.clone(), k.clone()),
            AuthKind::Source(s) => (AUTHORIZATION, s.token().await?),
            AuthKind::None => {
                return Err(Error::config(
                    "this client has no credentials and cannot send an authenticated request",
                ));
            }
        };
        let value = header_value(self.is_bearer(), &key)?;
        Ok((name, value, key))
    }

    /// Called on a 401: refreshes a token source (returns `true` when the request should be sent
    /// again). Static keys cannot be refreshed.
    pub(crate) async fn refresh_after_401(&self, rejected: &ApiKey) -> Result<bool> {
        match &self.0 {
            AuthKind::Source(s) => s.refresh(rejected).await.map(|_| true),
            _ => Ok(false),
        }
    }

    /// Replaces every occurrence of the static key in `text` by `[REDACTED]`, for server text that
    /// goes into an error (a server may echo a header back).
    pub(crate) fn redact(&self, text: &str) -> String {
        match &self.0 {
            AuthKind::Bearer(k) | AuthKind::Header(_, k) if !k.is_empty() => {
                text.replace(k.expose(), "[REDACTED]")
            }
            _ => text.to_owned(),
        }
    }
}

fn header_value(bearer: bool, key: &ApiKey) -> Result<HeaderValue> {
    let raw = if bearer {
        format!("Bearer {}", key.expose())
    } else {
        key.expose().to_owned()
    };
    // The message must not echo the key.
    let mut value = HeaderValue::from_str(&raw).map_err(|_| {
        Error::config("the API key contains characters that are not allowed in an HTTP header")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            AuthKind::Bearer(_) => f.write_str("Auth::Bearer([REDACTED])"),
            AuthKind::Header(n, _) => write!(f, "Auth::Header({n}: [REDACTED])"),
            AuthKind::Source(s) => write!(f, "Auth::TokenSource({s:?})"),
            AuthKind::None => f.write_str("Auth::None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bearer_and_header_placement_are_sensitive() {
        let (name, value, _) = Auth::bearer("k1").header_for_attempt().await.unwrap();
        assert_eq!(name, AUTHORIZATION);
        assert_eq!(value.to_str().unwrap(), "Bearer k1");
        assert!(value.is_sensitive());
        assert_eq!(format!("{value:?}"), "Sensitive");

        let auth = Auth::header("X-Sepolo-Api-Key", "k2").unwrap();
        let (name, value, _) = auth.header_for_attempt().await.unwrap();
        assert_eq!(name.as_str(), "x-sepolo-api-key");
        assert_eq!(value.to_str().unwrap(), "k2");
        assert!(value.is_sensitive());
    }

    #[test]
    fn invalid_inputs_are_config_errors_without_the_key() {
        let err = Auth::bearer("bad\nsecret-key").validate().unwrap_err();
        assert!(matches!(err, Error::Config(_)));
        assert!(!err.to_string().contains("secret-key"));
        assert!(matches!(
            Auth::bearer("  ").validate(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Auth::header("bad header", "k"),
            Err(Error::Config(_))
        ));
    }

    #[tokio::test]
    async fn no_credentials_validate_but_refuse_to_authenticate() {
        let auth = Auth::none();
        assert!(auth.validate().is_ok());
        assert!(matches!(
            auth.header_for_attempt().await,
            Err(Error::Config(_))
        ));
        assert!(!auth.refresh_after_401(&ApiKey::new("x")).await.unwrap());
        assert_eq!(auth.redact("text"), "text");
        assert_eq!(format!("{auth:?}"), "Auth::None");
    }

    #[test]
    fn debug_and_redact_hide_the_key() {
        let auth = Auth::header("X-Key", "topsecret").unwrap();
        assert_eq!(format!("{auth:?}"), "Auth::Header(x-key: [REDACTED])");
        assert_eq!(
            auth.redact("echo: topsecret!"),
            "echo: [REDACTED]!".to_owned()
        );
        assert_eq!(
            format!("{:?}", Auth::bearer("topsecret")),
            "Auth::Bearer([REDACTED])"
        );
    }
}
