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

/// A vendor's wire format: the shape of one object and of one page of a list.
pub(crate) trait Envelope: 'static {
    /// One object on the wire (`{data: T}`, or `T` itself).
    type One<T: DeserializeOwned + Send + 'static>: DeserializeOwned + Send + 'static;
    /// One page of a list on the wire.
    type Page<T: DeserializeOwned + Send + 'static>: DeserializeOwned + Send + 'static;

    /// The value inside a decoded object.
    fn open<T: DeserializeOwned + Send + 'static>(wire: Self::One<T>) -> T;

    /// The items and paging facts of a decoded page.
    fn open_page<T: DeserializeOwned + Send + 'static>(wire: Self::Page<T>) -> RawPage<T>;

    /// Sends `req` and turns the response into one value: the runner of a plain [`crate::Call`].
    fn call<T: DeserializeOwned + Send + 'static>(
        t: Transport,
        req: Request,
    ) -> BoxFuture<'static, Result<(T, ResponseMeta)>> {
        Box::pin(async move {
            let (wire, meta) = t.send_json::<Self::One<T>>(req).await?;
            Ok((Self::open(wire), meta))
        })
    }

    /// Sends `req` and turns the response into one page: the runner of a [`crate::List`].
    fn list<T: DeserializeOwned + Send + 'static>(
        t: Transport,
        req: Request,
    ) -> BoxFuture<'static, Result<(RawPage<T>, ResponseMeta)>> {
        Box::pin(async move {
            let (wire, meta) = t.send_json::<Self::Page<T>>(req).await?;
            Ok((Self::open_page(wire), meta))
        })
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
        let resp = t.send(req).await?;
        Ok(((), resp.meta))
    })
}
