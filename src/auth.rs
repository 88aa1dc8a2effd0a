//! Credentials and where they go on a request.
//!
//! An [`ApiKey`] is a secret: its `Debug` prints `ApiKey([REDACTED])`, it never appears in an
//! error or a log line, and the header that carries it is marked sensitive so that the HTTP stack
//! does not print it either. [`Auth`] says how the key is sent: `Authorization: Bearer …` or a
//! named header such as Sepolo's `X-Sepolo-Api-Key`, or through a [`TokenSource`] that hands out
//! short-lived tokens (OAuth2).

use std::borrow::Cow;
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
pub struct ApiKey(Arc<SecretString>);

impl ApiKey {
    /// Wraps a key. Clones share it (the key is zeroized when the last one drops).
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(Arc::new(SecretString::from(key.into())))
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
        ApiKey(Arc::new(s))
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
    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
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

    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
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

    /// The header of a static key (bearer or named header), built once for every request of a
    /// client; `None` for a token source, whose header is built per attempt, and for no auth.
    pub(crate) fn static_header(&self) -> Result<Option<(HeaderName, HeaderValue)>> {
        match &self.0 {
            AuthKind::Bearer(k) => Ok(Some((AUTHORIZATION, header_value(true, k)?))),
            AuthKind::Header(n, k) => Ok(Some((n.clone(), header_value(false, k)?))),
            AuthKind::Source(_) | AuthKind::None => Ok(None),
        }
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

    /// The static key, when there is one (a token source hands out a key per attempt instead).
    pub(crate) fn static_key(&self) -> Option<&ApiKey> {
        match &self.0 {
            AuthKind::Bearer(k) | AuthKind::Header(_, k) => Some(k),
            AuthKind::Source(_) | AuthKind::None => None,
        }
    }
}

/// What replaces a secret in server text.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// The shortest prefix of a secret that is redacted on its own. A server (or a proxy) that echoes
/// a truncated credential still gives away this much of it; shorter fragments are too common in
/// ordinary text to replace.
pub(crate) const MIN_REDACTED_PREFIX: usize = 8;

/// The longest request id kept from a response; a longer one is cut.
pub(crate) const MAX_REQUEST_ID_LEN: usize = 128;

/// Scrubs every credential one request carried out of the text a response sends back, before that
/// text reaches an error, a [`crate::ResponseMeta`] or a log line.
///
/// The secrets are the client's static key, the token an attempt was sent with, and whatever the
/// request carried in its body (an OAuth2 client secret, refresh token, authorization code or PKCE
/// verifier). Every occurrence of a secret, and of any prefix of it of [`MIN_REDACTED_PREFIX`]
/// characters or more (the whole secret when it is shorter), becomes `[REDACTED]`.
///
/// Cheap to clone (the secrets are shared), so that a client builds the redactor of its static key
/// once and every attempt without secrets of its own reuses it.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Arc<[Secret]>,
}

/// One secret of a [`Redactor`], with the search for its head built once.
struct Secret {
    key: ApiKey,
    head: HeadFinder,
}

/// Finds a secret's head (its first [`MIN_REDACTED_PREFIX`] bytes, or all of a shorter secret)
/// in text, ignoring ASCII case, by Horspool's method: each window is judged by its last byte,
/// and a byte that is not in the head moves the window past it, so a header value is scanned
/// in about one step per head length rather than a comparison at every byte. It holds part of
/// a secret: no `Debug`, and zeroed when dropped.
struct HeadFinder {
    /// The head, lowercased; `len` bytes of it are used.
    head: [u8; MIN_REDACTED_PREFIX],
    len: usize,
    /// How far the window moves when its last byte (lowercased) is the index.
    skip: [u8; 256],
}

impl HeadFinder {
    fn new(secret: &[u8]) -> Self {
        let mut head = [0u8; MIN_REDACTED_PREFIX];
        let len = secret.len().min(MIN_REDACTED_PREFIX);
        for (h, s) in head.iter_mut().zip(secret) {
            *h = s.to_ascii_lowercase();
        }
        // `len` is at most MIN_REDACTED_PREFIX (8), so every shift fits a byte.
        let full = u8::try_from(len).unwrap_or(u8::MAX);
        let mut skip = [full; 256];
        let before_last = head.get(..len.saturating_sub(1)).unwrap_or_default();
        for (i, &b) in before_last.iter().enumerate() {
            let shift = len.saturating_sub(1).saturating_sub(i);
            if let Some(slot) = skip.get_mut(usize::from(b)) {
                *slot = u8::try_from(shift).unwrap_or(u8::MAX);
            }
        }
        HeadFinder { head, len, skip }
    }

    /// The head, lowercased.
    fn head(&self) -> &[u8] {
        self.head.get(..self.len).unwrap_or_default()
    }

    /// Whether `text` holds the head, in any ASCII case.
    fn find_in(&self, text: &[u8]) -> bool {
        let head = self.head();
        let Some(&last) = head.last() else {
            return false;
        };
        let mut pos = 0usize;
        while let Some(window) = pos
            .checked_add(head.len())
            .and_then(|end| text.get(pos..end))
        {
            let Some(tail) = window.last().map(u8::to_ascii_lowercase) else {
                return false;
            };
            if tail == last && window.eq_ignore_ascii_case(head) {
                return true;
            }
            let step = self
                .skip
                .get(usize::from(tail))
                .copied()
                .unwrap_or(1)
                .max(1);
            pos = pos.saturating_add(usize::from(step));
        }
        false
    }
}

impl Drop for HeadFinder {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.head.zeroize();
        self.skip.zeroize();
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor for these secrets (empty ones are ignored).
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a ApiKey>) -> Self {
        let mut kept: Vec<Secret> = Vec::new();
        for s in secrets {
            if !s.expose().is_empty() && !kept.iter().any(|k| k.key.expose() == s.expose()) {
                kept.push(Secret {
                    key: s.clone(),
                    head: HeadFinder::new(s.expose().as_bytes()),
                });
            }
        }
        Redactor {
            secrets: kept.into(),
        }
    }

    /// `text` with every secret, and every prefix of one of [`MIN_REDACTED_PREFIX`] characters or
    /// more, replaced by `[REDACTED]`.
    pub(crate) fn text(&self, text: &str) -> String {
        self.redact(text).into_owned()
    }

    /// [`Redactor::text`], borrowing `text` when there was nothing to replace.
    fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for secret in self.secrets.iter() {
            if let Some(clean) = redact_one(&out, secret) {
                out = Cow::Owned(clean);
            }
        }
        out
    }

    /// A JSON value with every string in it, object keys included, at any depth, redacted.
    pub(crate) fn value(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        if self.secrets.is_empty() {
            return value;
        }
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.text(&k), self.value(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// Whether `text` holds one of the secrets, or a prefix of one that [`Redactor::text`] would
    /// replace. Allocates nothing.
    pub(crate) fn finds_in(&self, text: &[u8]) -> bool {
        self.secrets.iter().any(|secret| secret.head.find_in(text))
    }

    /// A request id (or another short identifier a server sends back) made safe to show: redacted,
    /// control characters dropped, at most [`MAX_REQUEST_ID_LEN`] characters. `None` when nothing
    /// printable is left.
    pub(crate) fn untrusted_id(&self, raw: &str) -> Option<String> {
        let clean = self.redact(raw.trim());
        // The usual id (short, printable) is copied once; only others are filtered and cut.
        if clean.len() <= MAX_REQUEST_ID_LEN && !clean.chars().any(char::is_control) {
            let id = clean.trim();
            return (!id.is_empty()).then(|| id.to_owned());
        }
        printable_id(&clean)
    }
}

/// `clean` without control characters, cut to [`MAX_REQUEST_ID_LEN`] characters and trimmed;
/// `None` when nothing is left.
fn printable_id(clean: &str) -> Option<String> {
    let printable: String = clean
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REQUEST_ID_LEN)
        .collect();
    let printable = printable.trim();
    (!printable.is_empty()).then(|| printable.to_owned())
}

/// Replaces each occurrence of `secret`, or of a prefix of it at least [`MIN_REDACTED_PREFIX`]
/// bytes long, in `text`, ignoring ASCII case (a host name in a URL, or a gateway, may change the
/// case of what it echoes). `None` when there was nothing to replace.
fn redact_one(text: &str, secret: &Secret) -> Option<String> {
    if !secret.head.find_in(text.as_bytes()) {
        return None;
    }
    let s = secret.key.expose().as_bytes();
    let head = secret.head.head();
    let t = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // bytes of `text` already copied or replaced
    let mut i = 0;
    while i < t.len() {
        let rest = t.get(i..).unwrap_or_default();
        if rest
            .get(..head.len())
            .is_some_and(|r| r.eq_ignore_ascii_case(head))
        {
            // Extend the match as far as it follows the secret, then to a character boundary.
            let same = rest
                .iter()
                .zip(s)
                .take_while(|(a, b)| a.eq_ignore_ascii_case(b));
            let mut end = i.saturating_add(same.count());
            while end < t.len() && !text.is_char_boundary(end) {
                end = end.saturating_add(1);
            }
            out.push_str(text.get(copied..i).unwrap_or_default());
            out.push_str(REDACTED);
            copied = end;
            i = end;
        } else {
            i = i.saturating_add(1);
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    Some(out)
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
        assert_eq!(format!("{auth:?}"), "Auth::None");
    }

    #[test]
    fn debug_hides_the_key() {
        let auth = Auth::header("X-Key", "topsecret").unwrap();
        assert_eq!(format!("{auth:?}"), "Auth::Header(x-key: [REDACTED])");
        assert_eq!(
            format!("{:?}", Auth::bearer("topsecret")),
            "Auth::Bearer([REDACTED])"
        );
        assert_eq!(
            format!("{:?}", Redactor::new([&ApiKey::new("topsecret")])),
            "Redactor(1 secrets)"
        );
    }

    #[test]
    fn redactor_replaces_the_secret_and_its_long_prefixes() {
        let key = ApiKey::new("sgt_live_TOPSECRET");
        let r = Redactor::new([&key, &ApiKey::new(""), &key]);
        assert_eq!(r.text("echo: sgt_live_TOPSECRET!"), "echo: [REDACTED]!");
        // A prefix of 8 characters or more is redacted; a shorter one is ordinary text.
        assert_eq!(r.text("key sgt_live_TOP…"), "key [REDACTED]…");
        assert_eq!(r.text("key sgt_live"), "key [REDACTED]");
        assert_eq!(r.text("key sgt_liv"), "key sgt_liv");
        assert_eq!(
            r.text("a sgt_live_TOPSECRETsgt_live_"),
            "a [REDACTED][REDACTED]"
        );
        assert_eq!(r.text(""), "");
        assert_eq!(
            r.text("host sgt_live_topsecret.evil"),
            "host [REDACTED].evil"
        );
        // A short secret is redacted whole, not by prefix.
        let short = Redactor::new([&ApiKey::new("k3y")]);
        assert_eq!(short.text("a k3y and k3"), "a [REDACTED] and k3");
        // Multi-byte text around and inside the secret.
        let uni = Redactor::new([&ApiKey::new("clé-secrète-ßß")]);
        assert_eq!(uni.text("é clé-secrète-ß é"), "é [REDACTED] é");
        assert_eq!(uni.text("clé-secrète-ßß"), "[REDACTED]");
    }

    #[test]
    fn redactor_cleans_json_at_any_depth_and_ids() {
        let r = Redactor::new([&ApiKey::new("sgt_live_TOPSECRET")]);
        let v = serde_json::json!({
            "sgt_live_TOPSECRET": [{"deep": {"x": "Bearer sgt_live_TOPSECRET"}}, 1, null],
        });
        assert_eq!(
            r.value(v),
            serde_json::json!({"[REDACTED]": [{"deep": {"x": "Bearer [REDACTED]"}}, 1, null]})
        );
        assert_eq!(r.untrusted_id(" req_1 "), Some("req_1".to_owned()));
        assert_eq!(r.untrusted_id("a\nb\u{7}c"), Some("abc".to_owned()));
        assert_eq!(r.untrusted_id("\r\n"), None);
        assert_eq!(
            r.untrusted_id("id-sgt_live_TOPSECRET"),
            Some("id-[REDACTED]".to_owned())
        );
        assert_eq!(
            r.untrusted_id(&"x".repeat(1000)).map(|s| s.len()),
            Some(MAX_REQUEST_ID_LEN)
        );
    }

    proptest::proptest! {
        /// The short-id fast path of `untrusted_id` gives what filtering every id gives.
        #[test]
        fn untrusted_id_fast_path_matches_the_filter(
            raw in "(\\PC|[ \t\r\n\u{7}]|sgt_live_TOPSECRET|sgt_live_T){0,40}"
        ) {
            let r = Redactor::new([&ApiKey::new("sgt_live_TOPSECRET")]);
            let expected = printable_id(&r.text(raw.trim()));
            proptest::prop_assert_eq!(r.untrusted_id(&raw), expected);
        }

        /// The skipping search finds a secret's head exactly where comparing every window,
        /// ignoring ASCII case, finds it: in arbitrary bytes, with the head (in any case, or
        /// cut short) planted among them.
        #[test]
        fn head_search_matches_every_window(
            secret in "[ -~]{1,20}",
            before in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            after in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            plant in 0u8..4,
            flip in proptest::collection::vec(proptest::bool::ANY, 8),
        ) {
            let head_len = secret.len().min(MIN_REDACTED_PREFIX);
            let head = &secret.as_bytes()[..head_len];
            let mut planted: Vec<u8> = match plant {
                // The head, its case flipped here and there.
                0 | 1 => head
                    .iter()
                    .zip(flip.iter().cycle())
                    .map(|(b, f)| if *f { b.to_ascii_uppercase() } else { b.to_ascii_lowercase() })
                    .collect(),
                // One byte short of the head.
                2 => head[..head_len - 1].to_vec(),
                _ => Vec::new(),
            };
            let mut text = before.clone();
            text.append(&mut planted);
            text.extend_from_slice(&after);
            let expected = text.windows(head_len).any(|w| w.eq_ignore_ascii_case(head));
            let r = Redactor::new([&ApiKey::new(secret.clone())]);
            proptest::prop_assert_eq!(r.finds_in(&text), expected);
        }
    }

    #[test]
    fn head_search_edges() {
        let r = Redactor::new([&ApiKey::new("sgt_live_TOPSECRET")]);
        assert!(r.finds_in(b"sgt_live"));
        assert!(r.finds_in(b"xxSGT_LIVE"));
        assert!(r.finds_in(b"SgT_lIvE_"));
        assert!(!r.finds_in(b"sgt_liv"));
        assert!(!r.finds_in(b"sgt_livx sgt_li ve"));
        assert!(!r.finds_in(b""));
        let short = Redactor::new([&ApiKey::new("ab")]);
        assert!(short.finds_in(b"xAb"));
        assert!(!short.finds_in(b"a b"));
    }
}
