//! What the core knows of a vendor: one description per vendor, as an implementation of
//! [`Vendor`].
//!
//! A vendor module describes its API once — its name, the 5xx statuses it promises are safe to
//! retry, its pacing buckets as a closed set of [`BucketKind`] values and which one each call
//! counts against, how its error body reads and where it keeps a request id, its envelopes (one
//! object, one page) and how its lists page (the page-size maximum, cursor or offset) —
//! and the core does the rest: the transport, the retry loop, pacing, error bodies, the list
//! engine. No file of the core names a vendor.

use reqwest::Method;
use serde_json::{Map, Value};

use crate::call::Runner;
use crate::envelope::{Envelope, One, RawPage};
use crate::error::ErrorCode;
use crate::list::Paging;
use crate::rate_limit::{Bucket, BucketKind, PaceBucket};

/// One vendor's API, as far as the core needs to know it.
pub(crate) trait Vendor: 'static {
    /// The vendor's pacing buckets. A bucket is named by a value of this type, so an unknown
    /// bucket cannot be named.
    type Bucket: BucketKind;

    /// Shown in tracing spans and in a client's `Debug` output.
    const NAME: &'static str;

    /// 5xx statuses the vendor documents as safe to retry for any method (429 and 503 always
    /// are; see [`crate::retry`]). None unless the vendor says so.
    const SAFE_STATUSES: &'static [u16] = &[];

    /// How the vendor wraps one object and one page of a list.
    type Wire: Envelope;

    /// How the vendor's lists page: the page-size parameter and its maximum, cursor or offset.
    const PAGING: &'static Paging;

    /// The published rate-limit buckets, used by `pacing(true)`.
    const BUCKETS: &'static [Bucket<Self::Bucket>];

    /// Where a response body keeps the request id when `X-Request-Id` is absent, as JSON
    /// pointers tried in order (`/meta/request_id`). By default a top-level `request_id` or
    /// `requestId`.
    const REQUEST_ID_POINTERS: &'static [&'static str] = &["/request_id", "/requestId"];

    /// Which bucket a call counts against, from its method and URL path.
    fn bucket_for(method: &Method, path: &str) -> Self::Bucket;

    /// Reads the vendor's error body (a JSON object); `None` when it is not of the vendor's
    /// shape. The core then tries the shape gateways and proxies send (`{message, code}`),
    /// and otherwise shows the start of the body. By default `{error: "code", message}`, or a
    /// lone `{error: "message"}`.
    fn error_body(body: &Map<String, Value>) -> Option<ErrorBody> {
        ErrorBody::flat(body, &["message"])
    }

    /// The normalized code of a code the vendor sent (a vendor-specific code such as
    /// `device_not_found` mapped to [`ErrorCode::NotFound`]). The code as sent stays available
    /// from [`crate::ApiError::vendor_code`].
    fn error_code(code: &str) -> ErrorCode {
        ErrorCode::parse(code)
    }
}

/// The parts of an error body, as a vendor's [`Vendor::error_body`] reads them.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ErrorBody {
    /// The machine-readable code (`device_not_found`, `forbidden`).
    pub(crate) code: Option<String>,
    /// The human-readable message.
    pub(crate) message: Option<String>,
    /// Structured details.
    pub(crate) details: Option<Value>,
    /// A request id inside the error body.
    pub(crate) request_id: Option<String>,
}

impl ErrorBody {
    /// `{error: "code", <message key>: "message"}` with the first of `message_keys` present
    /// (Sepolo's `message`, OAuth2's `error_description`), or `{error: "message"}` alone.
    pub(crate) fn flat(body: &Map<String, Value>, message_keys: &[&str]) -> Option<Self> {
        let error = body.get("error")?.as_str()?;
        let message = message_keys.iter().find_map(|k| text(body.get(*k)));
        Some(match message {
            Some(message) => ErrorBody {
                code: Some(error.to_owned()),
                message: Some(message),
                details: body.get("details").filter(|d| !d.is_null()).cloned(),
                request_id: None,
            },
            None => ErrorBody {
                message: Some(error.to_owned()),
                ..ErrorBody::default()
            },
        })
    }

    /// `{message, code?}`: what API gateways and proxies in front of any vendor send.
    pub(crate) fn gateway(body: &Map<String, Value>) -> Option<Self> {
        let message = body.get("message")?;
        Some(ErrorBody {
            code: text(body.get("code")),
            message: text(Some(message)),
            ..ErrorBody::default()
        })
    }
}

/// The string at `v`, if it is one.
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

/// A vendor description with its types erased, as the transport keeps it.
#[derive(Clone, Copy)]
pub(crate) struct Profile {
    pub(crate) name: &'static str,
    pub(crate) safe_statuses: &'static [u16],
    pub(crate) buckets: fn() -> Vec<PaceBucket>,
    pub(crate) bucket_for: fn(&Method, &str) -> &'static str,
    pub(crate) error_body: fn(&Map<String, Value>) -> Option<ErrorBody>,
    pub(crate) error_code: fn(&str) -> ErrorCode,
    pub(crate) request_id_pointers: &'static [&'static str],
    /// How one object comes, for raw calls.
    pub(crate) one: One,
    /// How lists page, for raw lists.
    pub(crate) paging: &'static Paging,
    /// One page of a list with its items as JSON values, for raw lists.
    pub(crate) raw_page: Runner<RawPage<Value>>,
}

impl Profile {
    /// The profile of `V`.
    pub(crate) fn of<V: Vendor>() -> Self {
        Profile {
            name: V::NAME,
            safe_statuses: V::SAFE_STATUSES,
            buckets: || V::BUCKETS.iter().map(Bucket::erase).collect(),
            bucket_for: |method, path| V::bucket_for(method, path).name(),
            error_body: V::error_body,
            error_code: V::error_code,
            request_id_pointers: V::REQUEST_ID_POINTERS,
            one: <V::Wire as Envelope>::ONE,
            paging: V::PAGING,
            raw_page: <V::Wire as Envelope>::list::<Value>,
        }
    }
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}
