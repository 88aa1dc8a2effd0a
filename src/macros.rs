//! Small macros that keep the vendor modules free of repeated boilerplate.

/// A newtype id: `Display`, `AsRef<str>`, `From<&str>`/`From<String>`, transparent serde, and the
/// vendor's prefix (`dev_`), which is documented but not enforced (ids come from the server).
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix the vendor gives this kind of id (empty when it uses none).
            pub const PREFIX: &'static str = $prefix;

            /// Wraps an id.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether the id carries the vendor's prefix for this kind of resource.
            pub fn has_expected_prefix(&self) -> bool {
                self.0.starts_with($prefix)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&String> for $name {
            fn from(s: &String) -> Self {
                Self(s.clone())
            }
        }

        impl From<&$name> for $name {
            fn from(s: &$name) -> Self {
                s.clone()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl From<$name> for std::borrow::Cow<'static, str> {
            fn from(id: $name) -> Self {
                std::borrow::Cow::Owned(id.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// The path segments of a request, each made a [`crate::transport::Segment`]: resource names
/// (`"devices"`) are borrowed, ids are moved in.
macro_rules! segments {
    ($($segment:expr),+ $(,)?) => {
        [$(std::borrow::Cow::<'static, str>::from($segment)),+]
    };
}

/// A string enum with a catch-all `Other(String)` that keeps values this version does not know,
/// so a new vendor value never breaks a caller.
macro_rules! open_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            /// A value this version of the SDK does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(s) => s,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::from(s))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok($name::from(&*s))
            }
        }
    };
}

/// The settings every vendor's `ClientBuilder` shares, delegated to the core `TransportBuilder`
/// in the field `inner`.
macro_rules! common_builder_methods {
    ($bucket:ty) => {
        /// Overrides the base URL (a sandbox, an on-premises deployment, a simulator). It must be
        /// `https://` unless its host is loopback or [`Self::allow_insecure_http`] is set.
        #[must_use]
        pub fn base_url(mut self, url: impl Into<String>) -> Self {
            self.inner.base_url(url);
            self
        }

        /// Allows an `http://` base URL for a non-loopback host. Keys then travel in clear text:
        /// use only on a network you trust.
        #[must_use]
        pub fn allow_insecure_http(mut self, allow: bool) -> Self {
            self.inner.allow_insecure_http(allow);
            self
        }

        /// Your integration's product token (`acme-erp-sync/1.4.2`), sent in `User-Agent` before
        /// the SDK's own.
        #[must_use]
        pub fn user_agent(mut self, product: impl Into<String>) -> Self {
            self.inner.user_agent(product);
            self
        }

        /// The retry policy of every call (each call can override it).
        #[must_use]
        pub fn retry_policy(mut self, policy: $crate::RetryPolicy) -> Self {
            self.inner.retry_policy(policy);
            self
        }

        /// Adds an [`Interceptor`](crate::intercept::Interceptor), called around every call and
        /// attempt of the client. Several may be added: they run in the order added.
        #[must_use]
        pub fn interceptor(mut self, interceptor: impl $crate::intercept::Interceptor) -> Self {
            self.inner.interceptor(std::sync::Arc::new(interceptor));
            self
        }

        /// Adds a retry rule for every call of the client, asked (after a call's own rules) before
        /// the default matrix; see [`RetryRule`](crate::retry::RetryRule). Several may be added:
        /// they are asked in the order added.
        #[must_use]
        pub fn retry_rule(mut self, rule: impl $crate::retry::RetryRule) -> Self {
            self.inner.retry_rule(std::sync::Arc::new(rule));
            self
        }

        /// The client-wide retry budget (default: 500 tokens, 5 per retry, 1 back per success).
        #[must_use]
        pub fn retry_budget(mut self, budget: $crate::RetryBudget) -> Self {
            self.inner.retry_budget(budget);
            self
        }

        /// How long to wait for a connection (default 5 s). Not applied to a custom
        /// [`Self::http_client`].
        #[must_use]
        pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.inner.connect_timeout(timeout);
            self
        }

        /// How long one attempt may take, response body included (default 30 s).
        #[must_use]
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.inner.timeout(timeout);
            self
        }

        /// Uses your own `reqwest::Client` (proxies, custom roots). Build it with
        /// `redirect(reqwest::redirect::Policy::none())`: a client that follows redirects across
        /// hosts would forward custom key headers.
        #[must_use]
        pub fn http_client(mut self, client: reqwest::Client) -> Self {
            self.inner.http_client(client);
            self
        }

        /// Turns client-side pacing with the vendor's published rate-limit buckets on or off
        /// (default off). Off also drops a [`Self::limiter`] set before.
        #[must_use]
        pub fn pacing(mut self, on: bool) -> Self {
            self.inner.pacing(on);
            self
        }

        /// Client-side pacing with your own buckets (a plan with other limits), named by the
        /// vendor's bucket kind (see the vendor module's `BUCKETS`).
        #[must_use]
        pub fn pacing_buckets(mut self, buckets: Vec<$crate::Bucket<$bucket>>) -> Self {
            self.inner.pacing_buckets(buckets);
            self
        }

        /// Paces every call through `limiter` (turning pacing on): an
        /// `Arc<`[`LocalLimiter`](crate::LocalLimiter)`>` shared by several clients of one
        /// process, a `RedisLimiter` (feature `redis`) shared by many processes using one key,
        /// or your own [`Limiter`](crate::Limiter). The buckets are the vendor's published ones,
        /// or those of [`Self::pacing_buckets`].
        #[must_use]
        pub fn limiter(mut self, limiter: impl $crate::Limiter) -> Self {
            self.inner.limiter(std::sync::Arc::new(limiter));
            self
        }

        /// The key from `<prefix>_API_KEY` (required) and the base URL from `<prefix>_BASE_URL`
        /// (optional), read through `get` (the process environment, or a test's map).
        pub(crate) fn with_env_lookup(
            self,
            get: &dyn Fn(&str) -> Option<String>,
            prefix: &str,
        ) -> $crate::Result<Self> {
            let key = $crate::env::env_required(get, &format!("{prefix}_API_KEY"))?;
            let b = self.api_key(key);
            Ok(
                match $crate::env::env_value(get, &format!("{prefix}_BASE_URL")) {
                    Some(url) => b.base_url(url),
                    None => b,
                },
            )
        }

        /// The largest response body accepted (default 64 MiB).
        #[must_use]
        pub fn max_response_bytes(mut self, bytes: usize) -> Self {
            self.inner.max_response_bytes(bytes);
            self
        }
    };
}

/// `with_retry_policy` and `with_timeout` for a builder with an `opts: CallOptions` field.
macro_rules! call_options {
    () => {
        /// A retry policy for this call only.
        pub fn with_retry_policy(mut self, policy: $crate::RetryPolicy) -> Self {
            self.opts.retry = Some(policy);
            self
        }

        /// A retry rule for this call only, asked before the client's rules and the default
        /// matrix (see [`RetryRule`](crate::retry::RetryRule)). Several may be added; they are
        /// asked in the order added.
        pub fn with_retry_rule(mut self, rule: impl $crate::retry::RetryRule) -> Self {
            self.opts.retry_rules.push(std::sync::Arc::new(rule));
            self
        }

        /// A per-attempt timeout for this call only.
        pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.opts.timeout = Some(timeout);
            self
        }
    };
}
