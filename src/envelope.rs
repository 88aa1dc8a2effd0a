//! Envelopes: how a vendor wraps its response bodies, and the one place a body becomes the value.
//!
//! | vendor | one object | one page of a list |
//! |---|---|---|
//! | SGT | `{data, meta}` | `{data, meta: {pagination: {next, has_more}}}` |
//! | Sepolo | the object itself | `{data, nextCursor, hasMore}` |
//! | SiliconWit | `{data}` | `{data, pagination: {total, limit, offset}}` |
//!
//! Each vendor declares its wire format once, as a type implementing [`Envelope`]; a call's
//! runner is then `Wire::call` (one object), `Wire::list` (a page) or [`no_content`] (a `204`).

use futures::future::BoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::transport::{Request, ResponseMeta, Transport};

/// One decoded page, before the list engine turns it into a [`crate::Page`].
#[derive(Debug)]
pub(crate) struct RawPage<T> {
    /// The page's items, in the server's order.
    pub(crate) items: Vec<T>,
    /// Cursor lists: the next page's cursor when the server says there is one (an empty cursor
    /// when it says "more" without one, which the pager reports as a protocol error).
    pub(crate) next_cursor: Option<String>,
    /// Offset lists: the total number of items the server reports.
    pub(crate) total: Option<u64>,
    /// Offset lists: the offset the server says the page starts at, when it says.
    pub(crate) echoed_offset: Option<u64>,
}

/// How a vendor sends one object.
#[allow(
    dead_code,
    reason = "some vendors need it and others do not; it is dead only in a build without them"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum One {
    /// `{data: T}`: `data` is required, even when `T` is an `Option` (`{"data": null}` is
    /// `None`; a body without `data` is a decode error).
    Data,
    /// `T` itself.
    Bare,
}

/// `{data: T}`, with `data` required (see [`One::Data`]).
#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub(crate) struct Data<T> {
    #[serde(deserialize_with = "serde::Deserialize::deserialize")]
    pub(crate) data: T,
}

/// A vendor's wire format: the shape of one object and of one page of a list.
pub(crate) trait Envelope: 'static {
    /// How one object comes.
    const ONE: One;
    /// One page of a list on the wire.
    type Page<T: DeserializeOwned + Send + 'static>: DeserializeOwned + Send + 'static;

    /// The items and paging facts of a decoded page.
    fn open_page<T: DeserializeOwned + Send + 'static>(wire: Self::Page<T>) -> RawPage<T>;

    /// Sends `req` and turns the response into one value: the runner of a plain [`crate::Call`].
    /// A runner that adjusts the value (a webhook's secret, a device's ETag) awaits [`one`]
    /// inside its own future instead, so the call is boxed once.
    fn call<T: DeserializeOwned + Send + 'static>(
        t: Transport,
        req: Request,
    ) -> BoxFuture<'static, Result<(T, ResponseMeta)>> {
        Box::pin(async move { send_one(Self::ONE, &t, &req).await })
    }

    /// Sends `req` and turns the response into one page: the runner of a [`crate::List`].
    fn list<T: DeserializeOwned + Send + 'static>(
        t: Transport,
        req: Request,
    ) -> BoxFuture<'static, Result<(RawPage<T>, ResponseMeta)>> {
        Box::pin(async move {
            let (wire, meta) = t.send_json::<Self::Page<T>>(&req).await?;
            Ok((Self::open_page(wire), meta))
        })
    }
}

/// Sends `req` and opens one object as `one` says (a vendor's [`Envelope::ONE`]). A runner that
/// adjusts the value awaits this inside its own future, so the call is boxed once.
pub(crate) async fn send_one<T: DeserializeOwned>(
    one: One,
    t: &Transport,
    req: &Request,
) -> Result<(T, ResponseMeta)> {
    match one {
        One::Data => {
            let (wire, meta) = t.send_json::<Data<T>>(req).await?;
            Ok((wire.data, meta))
        }
        One::Bare => t.send_json::<T>(req).await,
    }
}

/// Sends `req` and expects no body (`204`): the runner of a call that returns nothing.
#[allow(
    dead_code,
    reason = "some vendors need it and others do not; it is dead only in a build without them"
)]
pub(crate) fn no_content(
    t: Transport,
    req: Request,
) -> BoxFuture<'static, Result<((), ResponseMeta)>> {
    Box::pin(async move {
        let resp = t.send(&req).await?;
        Ok(((), resp.meta))
    })
}
