//! OAuth2 for SGT: the authorization code flow with PKCE (RFC 7636), token refresh, and a
//! session that keeps a client's token fresh.
//!
//! The spec names one endpoint, the token endpoint [`TOKEN_URL`](super::TOKEN_URL); access
//! tokens live one hour, refresh tokens 30 days of inactivity. The flow:
//!
//! 1. Make a [`PkcePair`] and a state ([`random_state`]); keep both for the callback.
//! 2. Send the user to [`OAuthConfig::authorization_url`] (your authorization page's address:
//!    the spec does not name one).
//! 3. On the callback, check the state and trade the code for tokens with
//!    [`OAuthClient::exchange_code`].
//! 4. Wrap the tokens in an [`OAuthSession`] and build a client with
//!    [`ClientBuilder::oauth`](super::ClientBuilder::oauth). The session refreshes the access
//!    token shortly before it expires (60 s by default), and once more if the API answers 401.
//!
//! ```no_run
//! # async fn demo(code_from_callback: String) -> iot_sdk::Result<()> {
//! use std::sync::Arc;
//! use iot_sdk::sgt::{Client, oauth::{OAuthClient, OAuthConfig, OAuthSession, PkcePair, random_state}};
//!
//! let config = OAuthConfig::new("acme-erp", "https://erp.example.com/oauth/callback");
//! let pkce = PkcePair::generate()?;
//! let state = random_state()?;
//! let url = config.authorization_url(
//!     "https://auth.sgtsystems.com/oauth2/authorize",
//!     ["devices:read", "events:write"],
//!     &state,
//!     &pkce,
//! )?;
//! // ... redirect the user to `url`; the callback brings `code` (and `state`: compare it) ...
//! let oauth = OAuthClient::new(config)?;
//! let tokens = oauth.exchange_code(&code_from_callback, pkce.verifier()).await?;
//! let session = Arc::new(OAuthSession::new(oauth, tokens));
//! let sgt = Client::builder().oauth(session).build()?;
//! let devices = sgt.devices().list().send().await?;
//! # Ok(()) }
//! ```
//!
//! Choices the spec leaves open: the client authenticates with `client_id` (and
//! `client_secret`, when it has one) in the form body (`client_secret_post`); a token response
//! without `expires_in` is taken to last the documented hour; a refresh response without a new
//! refresh token keeps the old one (RFC 6749 §6). Token requests are never retried once they may
//! have reached the server: an authorization code works once, and a rotated refresh token too.
//!
//! Tokens, codes, verifiers and client secrets are secrets: redacted in `Debug`, never in an
//! error (the server's error text is scrubbed of them too).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::auth::{ApiKey, Auth, TokenSource};
use crate::error::{Error, ProtocolError, Result};
use crate::rate_limit::{AllCalls, Bucket};
use crate::retry::RetryPolicy;
use crate::transport::{Request, Transport, TransportBuilder, parse_base_url};
use crate::vendor::{ErrorBody, Vendor};

/// How long before `expires_at` an [`OAuthSession`] refreshes, unless told otherwise: 60 s.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// What an access token is taken to last when the server does not say (`expires_in`): the
/// spec's one hour.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The token endpoint is not the API: no retries after a request may have been delivered (a code
/// or rotated refresh token works once), no published rate limits, RFC 6749's error body.
struct SgtOAuth;

impl Vendor for SgtOAuth {
    // The token endpoint answers RFC 6749 bodies, decoded as they are; it has no lists. SGT's
    // envelopes and paging stand in for the description's sake.
    type Wire = super::Wire;
    const PAGING: &'static crate::list::Paging = &super::PAGING;
    type Bucket = AllCalls;
    const NAME: &'static str = "sgt-oauth";
    const BUCKETS: &'static [Bucket<AllCalls>] = &[];
    const REQUEST_ID_POINTERS: &'static [&'static str] = &[];

    fn bucket_for(_: &reqwest::Method, _: &str) -> AllCalls {
        AllCalls
    }

    /// `{error, error_description}` (RFC 6749 §5.2), or `{error}` alone.
    fn error_body(body: &serde_json::Map<String, serde_json::Value>) -> Option<ErrorBody> {
        ErrorBody::flat(body, &["error_description"])
    }
}

/// A PKCE code verifier and its `S256` challenge (RFC 7636).
///
/// `Debug` hides the verifier: it is what proves that the code is yours.
#[derive(Clone)]
pub struct PkcePair {
    verifier: SecretString,
    challenge: String,
}

impl PkcePair {
    /// A fresh pair: 32 bytes from the operating system's cryptographic random number
    /// generator, base64url-encoded without padding (a 43-character verifier), and its
    /// challenge `base64url(SHA-256(verifier))`.
    ///
    /// ```
    /// let pkce = iot_sdk::sgt::oauth::PkcePair::generate()?;
    /// assert_eq!(pkce.verifier().len(), 43);
    /// assert_eq!(pkce.method(), "S256");
    /// # Ok::<(), iot_sdk::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        let bytes = random_bytes::<32>()?;
        Self::from_verifier(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The pair of a verifier kept from earlier (across the redirect). A verifier that is not 43
    /// to 128 characters of `A-Z a-z 0-9 - . _ ~` is an [`Error::InvalidInput`].
    ///
    /// ```
    /// // RFC 7636, appendix B.
    /// let pkce = iot_sdk::sgt::oauth::PkcePair::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?;
    /// assert_eq!(pkce.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    /// # Ok::<(), iot_sdk::Error>(())
    /// ```
    pub fn from_verifier(verifier: impl Into<String>) -> Result<Self> {
        let verifier = verifier.into();
        check_verifier(&verifier)?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Ok(PkcePair {
            verifier: SecretString::from(verifier),
            challenge,
        })
    }

    /// The verifier, for [`OAuthClient::exchange_code`] (keep it server-side until then).
    pub fn verifier(&self) -> &str {
        self.verifier.expose_secret()
    }

    /// The challenge, for the authorization request.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// The challenge method: always `S256`.
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

impl fmt::Debug for PkcePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkcePair")
            .field("verifier", &"[REDACTED]")
            .field("challenge", &self.challenge)
            .field("method", &self.method())
            .finish()
    }
}

/// RFC 7636 §4.1: 43 to 128 characters from the unreserved set.
fn check_verifier(v: &str) -> Result<()> {
    let ok_len = (43..=128).contains(&v.len());
    let ok_chars = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "a PKCE code verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'",
        ))
    }
}

/// A random `state` for the authorization request (16 bytes from the operating system's
/// cryptographic generator, base64url: 22 characters). Compare it with the one the callback
/// brings back, to refuse forged callbacks.
///
/// ```
/// let state = iot_sdk::sgt::oauth::random_state()?;
/// assert_eq!(state.len(), 22);
/// # Ok::<(), iot_sdk::Error>(())
/// ```
pub fn random_state() -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<16>()?))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::config(format!(
            "the operating system's random number generator failed: {e}"
        ))
    })?;
    Ok(bytes)
}

/// Who the OAuth2 client is and where it talks to.
#[derive(Clone)]
pub struct OAuthConfig {
    client_id: String,
    client_secret: Option<ApiKey>,
    redirect_uri: String,
    token_url: String,
    user_agent: Option<String>,
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("redirect_uri", &self.redirect_uri)
            .field("token_url", &self.token_url)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl OAuthConfig {
    /// A public client (no secret) with this id and redirect URI, using the production token
    /// endpoint [`TOKEN_URL`](super::TOKEN_URL).
    pub fn new(client_id: impl Into<String>, redirect_uri: impl Into<String>) -> Self {
        OAuthConfig {
            client_id: client_id.into(),
            client_secret: None,
            redirect_uri: redirect_uri.into(),
            token_url: super::TOKEN_URL.to_owned(),
            user_agent: None,
            retry: None,
            timeout: None,
        }
    }

    /// The client secret of a confidential (server-side) client, sent as `client_secret` in the
    /// token requests' form body.
    #[must_use]
    pub fn client_secret(mut self, secret: impl Into<ApiKey>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Another token endpoint (a sandbox, a simulator). It must be `https://` unless its host is
    /// loopback.
    #[must_use]
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = url.into();
        self
    }

    /// Your integration's product token, sent in `User-Agent` before the SDK's own.
    #[must_use]
    pub fn user_agent(mut self, product: impl Into<String>) -> Self {
        self.user_agent = Some(product.into());
        self
    }

    /// The retry policy of token requests. Whatever it says, a token request is retried only
    /// when it cannot have been processed (429, 503, a failed connect).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// How long one token request may take (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The redirect URI.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &str {
        &self.token_url
    }

    /// The address to send the user to: `base` (your authorization page; the spec does not name
    /// one) with `response_type=code`, `client_id`, `redirect_uri`, `scope` (space-separated,
    /// left out when empty), `state`, `code_challenge` and `code_challenge_method=S256`.
    ///
    /// `base` must be `https://` unless its host is loopback ([`Error::Config`] otherwise); an
    /// empty `state` is an [`Error::InvalidInput`] (use [`random_state`]).
    ///
    /// ```no_run
    /// # fn demo() -> iot_sdk::Result<()> {
    /// use iot_sdk::sgt::oauth::{OAuthConfig, PkcePair, random_state};
    /// let config = OAuthConfig::new("acme-erp", "https://erp.example.com/oauth/callback");
    /// let pkce = PkcePair::generate()?;
    /// let url = config.authorization_url(
    ///     "https://auth.sgtsystems.com/oauth2/authorize",
    ///     ["devices:read"],
    ///     &random_state()?,
    ///     &pkce,
    /// )?;
    /// println!("open {url}");
    /// # Ok(()) }
    /// ```
    pub fn authorization_url<I, S>(
        &self,
        base: &str,
        scopes: I,
        state: &str,
        pkce: &PkcePair,
    ) -> Result<Url>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if state.trim().is_empty() {
            return Err(Error::invalid_input(
                "the OAuth2 state is empty: use random_state() and check it on the callback",
            ));
        }
        let mut url = parse_base_url(base, false)?;
        let scope = scopes
            .into_iter()
            .map(|s| s.as_ref().trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri);
            if !scope.is_empty() {
                q.append_pair("scope", &scope);
            }
            q.append_pair("state", state)
                .append_pair("code_challenge", pkce.challenge())
                .append_pair("code_challenge_method", pkce.method());
        }
        Ok(url)
    }
}

/// Access and refresh tokens. `Debug` shows neither token.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TokenSet {
    /// The access token, sent as `Authorization: Bearer …`.
    pub access_token: ApiKey,
    /// The refresh token, when the server issued one.
    pub refresh_token: Option<ApiKey>,
    /// When the access token expires (from `expires_in`; one hour when the server does not say).
    pub expires_at: DateTime<Utc>,
    /// The granted scopes, space-separated, when the server says.
    pub scope: Option<String>,
    /// The token type (`Bearer`).
    pub token_type: String,
}

impl TokenSet {
    /// Tokens kept from earlier (restoring a session): an access token and when it expires.
    ///
    /// ```
    /// use iot_sdk::sgt::oauth::TokenSet;
    /// let tokens = TokenSet::new("eyJhbGciOi…", chrono::Utc::now())
    ///     .with_refresh_token("sgt_rt_3Kp9Vx2L");
    /// assert!(tokens.expires_within(std::time::Duration::from_secs(60)));
    /// ```
    pub fn new(access_token: impl Into<ApiKey>, expires_at: DateTime<Utc>) -> Self {
        TokenSet {
            access_token: access_token.into(),
            refresh_token: None,
            expires_at,
            scope: None,
            token_type: "Bearer".to_owned(),
        }
    }

    /// Adds the refresh token.
    #[must_use]
    pub fn with_refresh_token(mut self, refresh_token: impl Into<ApiKey>) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self
    }

    /// Adds the granted scopes.
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Whether the access token expires within `margin` from now (or already has).
    pub fn expires_within(&self, margin: Duration) -> bool {
        let margin = chrono::TimeDelta::from_std(margin).unwrap_or(chrono::TimeDelta::MAX);
        match Utc::now().checked_add_signed(margin) {
            Some(limit) => self.expires_at <= limit,
            None => true,
        }
    }
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Serialize)]
struct CodeForm<'a> {
    grant_type: &'static str,
    code: &'a str,
    redirect_uri: &'a str,
    client_id: &'a str,
    code_verifier: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

#[derive(Serialize)]
struct RefreshForm<'a> {
    grant_type: &'static str,
    refresh_token: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

/// Talks to the token endpoint. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    config: Arc<OAuthConfig>,
    transport: Transport,
}

impl OAuthClient {
    /// A client for `config`'s token endpoint. Fails with [`Error::Config`] on a token URL that
    /// is not `https://` (loopback excepted) or a bad user agent.
    ///
    /// ```no_run
    /// # fn demo() -> iot_sdk::Result<()> {
    /// use iot_sdk::sgt::oauth::{OAuthClient, OAuthConfig};
    /// let oauth = OAuthClient::new(
    ///     OAuthConfig::new("acme-erp", "https://erp.example.com/oauth/callback")
    ///         .client_secret(std::env::var("SGT_CLIENT_SECRET").unwrap_or_default()),
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn new(config: OAuthConfig) -> Result<Self> {
        if config.client_id.trim().is_empty() {
            return Err(Error::config("the OAuth2 client id is empty"));
        }
        let mut b = TransportBuilder::new::<SgtOAuth>(&config.token_url);
        b.auth(Auth::none());
        if let Some(p) = &config.user_agent {
            b.user_agent(p.clone());
        }
        if let Some(p) = &config.retry {
            b.retry_policy(p.clone());
        }
        if let Some(t) = config.timeout {
            b.timeout(t);
        }
        Ok(OAuthClient {
            config: Arc::new(config),
            transport: b.build()?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// Trades an authorization code for tokens (`grant_type=authorization_code`, with the PKCE
    /// verifier). An empty code or a malformed verifier is an [`Error::InvalidInput`]; the
    /// server's refusal (`invalid_grant`, …) is an [`Error::Api`] with that code.
    ///
    /// ```no_run
    /// # async fn demo(oauth: iot_sdk::sgt::oauth::OAuthClient, pkce: iot_sdk::sgt::oauth::PkcePair) -> iot_sdk::Result<()> {
    /// let tokens = oauth.exchange_code("SplxlOBeZQQYbYS6WxSbIA", pkce.verifier()).await?;
    /// println!("valid until {}", tokens.expires_at);
    /// # Ok(()) }
    /// ```
    pub async fn exchange_code(&self, code: &str, verifier: &str) -> Result<TokenSet> {
        if code.trim().is_empty() {
            return Err(Error::invalid_input("the authorization code is empty"));
        }
        check_verifier(verifier)?;
        let secret = self.config.client_secret.as_ref().map(ApiKey::expose);
        let form = CodeForm {
            grant_type: "authorization_code",
            code,
            redirect_uri: &self.config.redirect_uri,
            client_id: &self.config.client_id,
            code_verifier: verifier,
            client_secret: secret,
        };
        let secrets = [ApiKey::new(code), ApiKey::new(verifier)];
        self.token_request(&form, &secrets).await
    }

    /// Trades a refresh token for a new access token (`grant_type=refresh_token`). When the
    /// answer carries no new refresh token, the returned set has none: keep the old one (an
    /// [`OAuthSession`] does).
    ///
    /// ```no_run
    /// # async fn demo(oauth: iot_sdk::sgt::oauth::OAuthClient, tokens: iot_sdk::sgt::oauth::TokenSet) -> iot_sdk::Result<()> {
    /// if let Some(rt) = &tokens.refresh_token {
    ///     let fresh = oauth.refresh(rt.clone()).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn refresh(&self, refresh_token: impl Into<ApiKey>) -> Result<TokenSet> {
        let refresh_token = refresh_token.into();
        if refresh_token.expose().trim().is_empty() {
            return Err(Error::invalid_input("the refresh token is empty"));
        }
        let secret = self.config.client_secret.as_ref().map(ApiKey::expose);
        let form = RefreshForm {
            grant_type: "refresh_token",
            refresh_token: refresh_token.expose(),
            client_id: &self.config.client_id,
            client_secret: secret,
        };
        self.token_request(&form, std::slice::from_ref(&refresh_token))
            .await
    }

    /// Posts a token request. `secrets` (and the client secret) are redacted by the transport
    /// from anything the response echoes back.
    async fn token_request<F: Serialize>(&self, form: &F, secrets: &[ApiKey]) -> Result<TokenSet> {
        let url = self.transport.base_url().clone();
        let mut req = Request::absolute(Method::POST, url)
            .form(form)?
            .without_auth()
            .sensitive_response();
        for secret in secrets.iter().chain(&self.config.client_secret) {
            req = req.secret(secret);
        }
        let (raw, meta) = self.transport.send_json::<TokenResponse>(&req).await?;
        let protocol = |msg: &str| {
            let mut e = ProtocolError::new(msg);
            e.request_id = meta.request_id.clone();
            e.request = meta.request.clone();
            Error::from(e)
        };
        if raw.access_token.trim().is_empty() {
            return Err(protocol(
                "the token endpoint answered without an access token",
            ));
        }
        let token_type = raw.token_type.unwrap_or_else(|| "Bearer".to_owned());
        if !token_type.eq_ignore_ascii_case("bearer") {
            // The type is server text and is not echoed: it could carry anything.
            return Err(protocol(
                "the token endpoint issued a token that is not a bearer token; only bearer \
                 tokens are supported",
            ));
        }
        let lifetime = raw
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        let expires_at = chrono::TimeDelta::from_std(lifetime)
            .ok()
            .and_then(|d| Utc::now().checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok(TokenSet {
            access_token: ApiKey::new(raw.access_token),
            refresh_token: raw
                .refresh_token
                .filter(|t| !t.trim().is_empty())
                .map(ApiKey::new),
            expires_at,
            scope: raw.scope,
            token_type,
        })
    }
}

type RefreshHook = Arc<dyn Fn(&TokenSet) + Send + Sync>;

/// Keeps an OAuth2 access token fresh for a [`Client`](super::Client): a [`TokenSource`].
///
/// It refreshes when the token expires within the margin (60 s by default), and once when the
/// API rejects a token with 401 unless another request already refreshed it. Concurrent callers
/// wait for one refresh instead of each making their own.
pub struct OAuthSession {
    client: OAuthClient,
    tokens: tokio::sync::Mutex<TokenSet>,
    margin: Duration,
    on_refresh: Option<RefreshHook>,
}

impl fmt::Debug for OAuthSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expires_at = self.tokens.try_lock().ok().map(|t| t.expires_at);
        f.debug_struct("OAuthSession")
            .field("client_id", &self.client.config.client_id)
            .field("expires_at", &expires_at)
            .field("refresh_margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl OAuthSession {
    /// A session that starts with `tokens` and refreshes them through `client`.
    ///
    /// ```no_run
    /// # async fn demo(oauth: iot_sdk::sgt::oauth::OAuthClient, tokens: iot_sdk::sgt::oauth::TokenSet) -> iot_sdk::Result<()> {
    /// use std::{sync::Arc, time::Duration};
    /// use iot_sdk::sgt::{Client, oauth::OAuthSession};
    /// let session = Arc::new(
    ///     OAuthSession::new(oauth, tokens)
    ///         .with_refresh_margin(Duration::from_secs(120))
    ///         .on_refresh(|t| println!("new token until {}", t.expires_at)),
    /// );
    /// let sgt = Client::builder().oauth(session.clone()).build()?;
    /// # Ok(()) }
    /// ```
    pub fn new(client: OAuthClient, tokens: TokenSet) -> Self {
        OAuthSession {
            client,
            tokens: tokio::sync::Mutex::new(tokens),
            margin: DEFAULT_REFRESH_MARGIN,
            on_refresh: None,
        }
    }

    /// Refreshes when the access token expires within `margin` (default 60 s).
    #[must_use]
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Called with the new tokens after every refresh, to persist them (a rotated refresh token
    /// replaces the old one, which stops working).
    #[must_use]
    pub fn on_refresh(mut self, hook: impl Fn(&TokenSet) + Send + Sync + 'static) -> Self {
        self.on_refresh = Some(Arc::new(hook));
        self
    }

    /// The current tokens (to persist them).
    pub async fn tokens(&self) -> TokenSet {
        self.tokens.lock().await.clone()
    }

    /// Refreshes under the lock; keeps the old refresh token and scope when the answer has none.
    async fn refresh_locked(&self, current: &mut TokenSet) -> Result<()> {
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(Error::config(
                "the OAuth2 access token needs refreshing but the session has no refresh token: \
                 authorize again",
            ));
        };
        let mut fresh = self.client.refresh(refresh_token.clone()).await?;
        if fresh.refresh_token.is_none() {
            fresh.refresh_token = Some(refresh_token);
        }
        if fresh.scope.is_none() {
            fresh.scope = current.scope.clone();
        }
        *current = fresh;
        tracing::debug!(expires_at = %current.expires_at, "refreshed the OAuth2 access token");
        if let Some(hook) = &self.on_refresh {
            hook(current);
        }
        Ok(())
    }
}

impl TokenSource for OAuthSession {
    fn token(&self) -> BoxFuture<'_, Result<ApiKey>> {
        Box::pin(async move {
            let mut tokens = self.tokens.lock().await;
            if tokens.refresh_token.is_some() && tokens.expires_within(self.margin) {
                self.refresh_locked(&mut tokens).await?;
            }
            Ok(tokens.access_token.clone())
        })
    }

    fn refresh(&self, rejected: &ApiKey) -> BoxFuture<'_, Result<ApiKey>> {
        let rejected = rejected.clone();
        Box::pin(async move {
            let mut tokens = self.tokens.lock().await;
            if tokens.access_token.expose() != rejected.expose() {
                // Another request refreshed while this one was out.
                return Ok(tokens.access_token.clone());
            }
            self.refresh_locked(&mut tokens).await?;
            Ok(tokens.access_token.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let p = PkcePair::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(!format!("{p:?}").contains("dBjftJeZ4CVP"));
    }

    #[test]
    fn verifier_rules() {
        assert!(check_verifier(&"a".repeat(43)).is_ok());
        assert!(check_verifier(&"a".repeat(128)).is_ok());
        assert!(check_verifier(&"a".repeat(42)).is_err());
        assert!(check_verifier(&"a".repeat(129)).is_err());
        assert!(check_verifier(&format!("{}+", "a".repeat(42))).is_err());
        assert!(check_verifier(&format!("{}-._~", "A0".repeat(20))).is_ok());
    }
}
