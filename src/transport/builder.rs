//! The settings of a client, shared by the vendor builders, and the base-URL rules.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use url::{Host, Url};

use super::{Inner, SDK_USER_AGENT, Transport};
use crate::auth::{Auth, Redactor};
use crate::error::{Error, Result};
use crate::intercept::{Interceptor, Interceptors};
use crate::limiter::{Limiter, LocalLimiter, Pacer};
use crate::rate_limit::{Bucket, BucketKind, PaceBucket};
use crate::retry::{RetryBudget, RetryPolicy, RetryRule, RetryRules};
use crate::vendor::{Profile, Vendor};

/// The settings of a client, shared by the vendor builders.
pub(crate) struct TransportBuilder {
    vendor: Profile,
    base_url: String,
    allow_insecure_http: bool,
    auth: Option<Auth>,
    product: Option<String>,
    headers: Vec<(String, String)>,
    retry: RetryPolicy,
    retry_budget: Option<RetryBudget>,
    connect_timeout: Duration,
    timeout: Duration,
    http: Option<reqwest::Client>,
    max_response_bytes: usize,
    pacing: Option<Vec<PaceBucket>>,
    interceptors: Vec<Arc<dyn Interceptor>>,
    retry_rules: RetryRules,
    limiter: Option<Arc<dyn Limiter>>,
}

impl fmt::Debug for TransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("vendor", &self.vendor.name)
            .field("base_url", &self.base_url)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("auth", &self.auth)
            .field("user_agent", &self.product)
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.0).collect::<Vec<_>>(),
            )
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("custom_http_client", &self.http.is_some())
            .field("pacing", &self.pacing)
            .field(
                "interceptors",
                &self
                    .interceptors
                    .iter()
                    .map(|i| i.name())
                    .collect::<Vec<_>>(),
            )
            .field("retry_rules", &self.retry_rules)
            .field("limiter", &self.limiter)
            .finish()
    }
}

impl TransportBuilder {
    /// The settings of a client of `V`, starting at `default_base_url`.
    pub(crate) fn new<V: Vendor>(default_base_url: &str) -> Self {
        TransportBuilder {
            vendor: Profile::of::<V>(),
            base_url: default_base_url.to_owned(),
            allow_insecure_http: false,
            auth: None,
            product: None,
            headers: Vec::new(),
            retry: RetryPolicy::default(),
            retry_budget: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            http: None,
            max_response_bytes: 64 * 1024 * 1024,
            pacing: None,
            interceptors: Vec::new(),
            retry_rules: RetryRules::default(),
            limiter: None,
        }
    }

    pub(crate) fn interceptor(&mut self, interceptor: Arc<dyn Interceptor>) {
        self.interceptors.push(interceptor);
    }

    pub(crate) fn retry_rule(&mut self, rule: Arc<dyn RetryRule>) {
        self.retry_rules.push(rule);
    }

    pub(crate) fn base_url(&mut self, url: impl Into<String>) {
        self.base_url = url.into();
    }

    pub(crate) fn allow_insecure_http(&mut self, allow: bool) {
        self.allow_insecure_http = allow;
    }

    pub(crate) fn auth(&mut self, auth: Auth) {
        self.auth = Some(auth);
    }

    pub(crate) fn user_agent(&mut self, product: impl Into<String>) {
        self.product = Some(product.into());
    }

    /// A header sent with every request (SGT's tenant).
    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    pub(crate) fn header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    pub(crate) fn retry_policy(&mut self, policy: RetryPolicy) {
        self.retry = policy;
    }

    pub(crate) fn retry_budget(&mut self, budget: RetryBudget) {
        self.retry_budget = Some(budget);
    }

    pub(crate) fn connect_timeout(&mut self, t: Duration) {
        self.connect_timeout = t;
    }

    pub(crate) fn timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    pub(crate) fn http_client(&mut self, client: reqwest::Client) {
        self.http = Some(client);
    }

    pub(crate) fn max_response_bytes(&mut self, n: usize) {
        self.max_response_bytes = n;
    }

    /// Client-side pacing with the vendor's published buckets (`true`) or none (`false`, which
    /// also drops a limiter set before).
    pub(crate) fn pacing(&mut self, on: bool) {
        self.pacing = on.then(self.vendor.buckets);
        if !on {
            self.limiter = None;
        }
    }

    /// Pacing decided by `limiter`, with the buckets set by `pacing_buckets` or else the
    /// vendor's published ones.
    pub(crate) fn limiter(&mut self, limiter: Arc<dyn Limiter>) {
        self.limiter = Some(limiter);
        if self.pacing.is_none() {
            self.pacing = Some((self.vendor.buckets)());
        }
    }

    /// Client-side pacing with custom buckets (a plan with other limits), named by the vendor's
    /// bucket kind.
    pub(crate) fn pacing_buckets<K: BucketKind>(&mut self, buckets: Vec<Bucket<K>>) {
        self.pacing = Some(buckets.iter().map(Bucket::erase).collect());
    }

    pub(crate) fn build(self) -> Result<Transport> {
        let auth = self.auth.ok_or_else(|| {
            Error::config("no credentials: set an API key (or a token source) on the builder")
        })?;
        auth.validate()?;
        let static_auth = auth.static_header()?;
        let redactor = Redactor::new(auth.static_key());
        let base = parse_base_url(&self.base_url, self.allow_insecure_http)?;

        let mut default_headers = HeaderMap::new();
        let ua = match &self.product {
            Some(p) if !p.trim().is_empty() => format!("{} {SDK_USER_AGENT}", p.trim()),
            _ => SDK_USER_AGENT.to_owned(),
        };
        let ua = HeaderValue::from_str(&ua)
            .map_err(|_| Error::config("the user agent is not a valid HTTP header value"))?;
        default_headers.insert(USER_AGENT, ua);
        default_headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value) in &self.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::config(format!("`{name}` is not a valid HTTP header name")))?;
            let v = HeaderValue::from_str(value).map_err(|_| {
                Error::config(format!(
                    "the value of `{name}` is not a valid HTTP header value"
                ))
            })?;
            default_headers.insert(n, v);
        }

        // A client built here carries the default timeout itself, so that a call without a
        // timeout of its own sets none per request (reqwest keeps those in an allocated
        // extension map); a caller's client gets the timeout on every request.
        let client_has_timeout = self.http.is_none();
        let http = match self.http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .timeout(self.timeout)
                .redirect(same_origin_redirects())
                .build()
                .map_err(|e| Error::config(format!("could not build the HTTP client: {e}")))?,
        };

        Ok(Transport {
            inner: Arc::new(Inner {
                vendor: self.vendor,
                http,
                base,
                auth,
                static_auth,
                redactor,
                default_headers,
                retry: self.retry,
                budget: self.retry_budget.unwrap_or_default(),
                timeout: self.timeout,
                client_has_timeout,
                max_response_bytes: self.max_response_bytes,
                pacer: self.pacing.as_deref().map(|buckets| {
                    let limiter = self
                        .limiter
                        .unwrap_or_else(|| Arc::new(LocalLimiter::new()));
                    Pacer::new(buckets, limiter)
                }),
                last_rate_limit: Mutex::new(None),
                warned: Mutex::new(HashSet::new()),
                interceptors: Interceptors::new(self.interceptors),
                retry_rules: self.retry_rules,
            }),
        })
    }
}

/// Follows redirects only within the original origin (scheme, host, port). A redirect elsewhere
/// is returned as a 3xx error: reqwest strips `Authorization` across hosts, but would forward a
/// custom key header such as `X-Sepolo-Api-Key`.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > 10 {
            return attempt.error("too many redirects");
        }
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Checks a base URL: `http(s)`, no credentials, query or fragment, and `https` unless the host is
/// loopback or the caller opted out.
pub(crate) fn parse_base_url(raw: &str, allow_insecure_http: bool) -> Result<Url> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::config(format!("the base URL is not a valid URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            "the base URL must not contain a user name or password; set the key on the builder",
        ));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(Error::config(format!("the base URL `{url}` has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(format!(
            "the base URL `{url}` must not have a query or fragment"
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::config(format!(
                "the base URL `{url}` is not https: keys would travel in clear text \
                 (allowed only for loopback hosts, or with allow_insecure_http(true))"
            )));
        }
        other => {
            return Err(Error::config(format!(
                "the base URL scheme `{other}` is not supported (use https)"
            )));
        }
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}
