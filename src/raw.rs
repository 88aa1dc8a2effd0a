//! Raw calls: an endpoint the SDK does not model yet, with everything else of a modelled call.
//!
//! `client.raw()` on every vendor client gives a [`Raw`]: method, path segments (each percent-encoded, `..` refused), query, JSON
//! body, and a typed or [`serde_json::Value`] response. The call goes through the same
//! transport as every modelled call: the client's base URL, credentials, tenant and default
//! headers, retries and retry rules, pacing, rate-limit parsing ([`crate::RateLimit`]), the
//! vendor's error normalization ([`crate::Error::Api`] with its [`crate::ErrorCode`]), the
//! response size cap, redaction, interceptors and spans. [`Raw::list`] pages any list of the
//! vendor with its envelope and paging (cursor or offset) as a [`List`].
//!
//! ```no_run
//! # async fn demo() -> iot_sdk::Result<()> {
//! use futures::TryStreamExt;
//! use serde_json::{Value, json};
//!
//! let sgt = iot_sdk::sgt::Client::builder().api_key("sgt_live_example").build()?;
//! // The whole body, as sent.
//! let body: Value = sgt.raw().get(["devices", "dev_42"]).decode().await?;
//! // The object inside the vendor's envelope (`data` for SGT).
//! let device: Value = sgt.raw().get(["devices", "dev_42"]).data().await?;
//! // A write, with a JSON body.
//! let created: Value = sgt
//!     .raw()
//!     .post(["devices"])
//!     .json(&json!({"name": "Pump 7", "type": "pump"}))
//!     .data()
//!     .await?;
//! // Every item of a list, page after page.
//! let online: Vec<Value> = sgt
//!     .raw()
//!     .list(["devices"], &[("status", "online")])
//!     .limit(200)
//!     .items()
//!     .try_collect()
//!     .await?;
//! # let _ = (body, device, created, online); Ok(()) }
//! ```

use futures::future::BoxFuture;
use reqwest::Method;
use reqwest::header::HeaderName;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::call::Call;
use crate::envelope::{RawPage, no_content, send_one};
use crate::error::{DecodeError, Error, RequestInfo, Result, snippet};
use crate::list::List;
use crate::transport::{Request, ResponseMeta, Segment, Transport};

/// Headers a raw call may not set: the credential is the builder's.
const REFUSED_HEADERS: &[&str] = &["authorization", "proxy-authorization", "x-sepolo-api-key"];

/// Raw calls on one client; get it from the vendor client's `raw()`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Raw {
    transport: Transport,
}

impl Raw {
    pub(crate) fn new(transport: Transport) -> Self {
        Raw { transport }
    }

    /// A call of `method` to the base URL plus `segments` (`["devices", "dev_42"]`).
    pub fn request<I, S>(&self, method: Method, segments: I) -> RawRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RawRequest {
            transport: self.transport.clone(),
            request: Ok(Request::new(
                method,
                segments.into_iter().map(|s| Segment::Owned(s.into())),
            )),
        }
    }

    /// `GET`.
    pub fn get<I: IntoIterator<Item = S>, S: Into<String>>(&self, segments: I) -> RawRequest {
        self.request(Method::GET, segments)
    }

    /// `POST` (not retried after it may have been sent, unless marked idempotent).
    pub fn post<I: IntoIterator<Item = S>, S: Into<String>>(&self, segments: I) -> RawRequest {
        self.request(Method::POST, segments)
    }

    /// `PUT`.
    pub fn put<I: IntoIterator<Item = S>, S: Into<String>>(&self, segments: I) -> RawRequest {
        self.request(Method::PUT, segments)
    }

    /// `PATCH` (like `POST`, not idempotent unless marked so).
    pub fn patch<I: IntoIterator<Item = S>, S: Into<String>>(&self, segments: I) -> RawRequest {
        self.request(Method::PATCH, segments)
    }

    /// `DELETE`.
    pub fn delete<I: IntoIterator<Item = S>, S: Into<String>>(&self, segments: I) -> RawRequest {
        self.request(Method::DELETE, segments)
    }

    /// A list at `GET segments?query`, paged as the vendor's lists page (SGT and Sepolo by
    /// cursor, SiliconWit by offset) and opened with its page envelope; each item decoded as
    /// `T` (`serde_json::Value` to keep them as sent). `query` is any `Serialize` value that
    /// makes a query string (a struct, a map, `&[("status", "online")]`); the page size and
    /// the cursor or offset are added by the list ([`List::limit`], [`List::cursor`],
    /// [`List::offset`]). A query that does not serialize is an [`Error::InvalidInput`] when
    /// the list is sent. Offset lists are not deduplicated by id (the SDK does not know `T`'s).
    pub fn list<T, I, S, Q>(&self, segments: I, query: &Q) -> List<T, RawQuery>
    where
        T: DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = S>,
        S: Into<String>,
        Q: Serialize + ?Sized,
    {
        let (pairs, problem) = match serde_urlencoded::to_string(query) {
            Ok(q) => (
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(format!("query parameters: {e}"))),
        };
        let paging = self.transport.profile().paging;
        List::paged(
            self.transport.clone(),
            segments.into_iter().map(Into::into).collect(),
            RawQuery(pairs),
            paging,
            typed_page::<T>,
        )
        .refuse(problem)
    }
}

/// The query of a raw list: `key=value` pairs in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawQuery(Vec<(String, String)>);

impl RawQuery {
    /// The pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// A raw call being built; finish it with [`RawRequest::decode`], [`RawRequest::data`] or
/// [`RawRequest::no_content`], which give a [`Call`] (send or await it).
#[must_use = "a raw request does nothing until made into a call and sent"]
pub struct RawRequest {
    transport: Transport,
    request: Result<Request>,
}

impl std::fmt::Debug for RawRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRequest")
            .field("request", &self.request.as_ref().map(Request::describe))
            .finish()
    }
}

impl RawRequest {
    fn map(mut self, f: impl FnOnce(Request) -> Result<Request>) -> Self {
        self.request = self.request.and_then(f);
        self
    }

    /// The query string, from any `Serialize` value that makes one (a struct with `Option`
    /// fields skipped when `None`, a map, `&[("k", "v")]`). Replaces an earlier one.
    pub fn query<Q: Serialize + ?Sized>(self, query: &Q) -> Self {
        self.map(|r| r.query(query))
    }

    /// Adds one `key=value` pair to the query string (percent-encoded).
    pub fn query_pair(self, key: &str, value: &str) -> Self {
        self.map(|r| Ok(r.append_query(key, value)))
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json<B: Serialize + ?Sized>(self, body: &B) -> Self {
        self.map(|r| r.json(body))
    }

    /// A header on this call. The credential headers (`Authorization`, `X-Sepolo-Api-Key`)
    /// are refused with [`Error::InvalidInput`]: the credential is set on the builder.
    pub fn header(self, name: &str, value: &str) -> Self {
        self.map(|r| {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Error::invalid_input(format!(
                    "`{}` is not a valid header name",
                    snippet(name, 64)
                ))
            })?;
            if REFUSED_HEADERS.contains(&n.as_str()) {
                return Err(Error::invalid_input(format!(
                    "`{n}` carries the credential: set the key on the client's builder"
                )));
            }
            r.header(n, value)
        })
    }

    /// Whether the call is safe to repeat (by default: GET, HEAD, PUT, DELETE, OPTIONS).
    pub fn idempotent(self, idempotent: bool) -> Self {
        self.map(|r| Ok(r.idempotent(idempotent)))
    }

    /// The whole response body decoded as `T`, envelope included.
    pub fn decode<T: DeserializeOwned + Send + 'static>(self) -> Call<T> {
        Call::new(self.transport, self.request, whole::<T>)
    }

    /// The object inside the vendor's one-object envelope (SGT's and SiliconWit's `data`; a
    /// Sepolo body is the object itself), decoded as `T`.
    pub fn data<T: DeserializeOwned + Send + 'static>(self) -> Call<T> {
        Call::new(self.transport, self.request, data::<T>)
    }

    /// A call whose response body is ignored (a `204`).
    pub fn no_content(self) -> Call<()> {
        Call::new(self.transport, self.request, no_content)
    }
}

fn whole<T: DeserializeOwned + Send + 'static>(
    t: Transport,
    req: Request,
) -> BoxFuture<'static, Result<(T, ResponseMeta)>> {
    Box::pin(async move { t.send_json::<T>(&req).await })
}

fn data<T: DeserializeOwned + Send + 'static>(
    t: Transport,
    req: Request,
) -> BoxFuture<'static, Result<(T, ResponseMeta)>> {
    let one = t.profile().one;
    Box::pin(async move { send_one(one, &t, &req).await })
}

/// One page through the vendor's page envelope, its items then decoded as `T`.
fn typed_page<T: DeserializeOwned + Send + 'static>(
    t: Transport,
    req: Request,
) -> BoxFuture<'static, Result<(RawPage<T>, ResponseMeta)>> {
    Box::pin(async move {
        let redactor = t.static_redactor();
        let run = t.profile().raw_page;
        let (page, meta) = run(t, req).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for (n, item) in page.items.into_iter().enumerate() {
            match serde_path_to_error::deserialize::<_, T>(item) {
                Ok(v) => items.push(v),
                Err(e) => {
                    let path = format!("items[{n}].{}", e.path());
                    return Err(DecodeError {
                        status: meta.status,
                        request_id: meta.request_id.clone(),
                        request: meta
                            .request
                            .clone()
                            .unwrap_or_else(|| RequestInfo::new("?", "?")),
                        field_path: snippet(&redactor.text(&path), 200),
                        message: snippet(&redactor.text(&e.into_inner().to_string()), 200),
                        body_snippet: None,
                    }
                    .into());
                }
            }
        }
        let page = RawPage {
            items,
            next_cursor: page.next_cursor,
            total: page.total,
            echoed_offset: page.echoed_offset,
        };
        Ok((page, meta))
    })
}
