//! Paging end to end over HTTP: an SGT-style cursor envelope and a SiliconWit-style offset
//! envelope, fetched through the transport and walked by the generic streams.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::error::Error;
use crate::paging::{FetchPage, Page, PageStream, PageToken};

#[derive(Deserialize)]
struct CursorEnvelope {
    data: Vec<u32>,
    meta: CursorMeta,
}
#[derive(Deserialize)]
struct CursorMeta {
    pagination: Pagination,
}
#[derive(Deserialize)]
struct Pagination {
    next: Option<String>,
    has_more: bool,
}

fn cursor_pages(t: Transport) -> FetchPage<u32> {
    Arc::new(move |token| {
        let t = t.clone();
        Box::pin(async move {
            let cursor = match token {
                Some(PageToken::Cursor(c)) => Some(c),
                _ => None,
            };
            #[derive(serde::Serialize)]
            struct Q {
                limit: u32,
                #[serde(skip_serializing_if = "Option::is_none")]
                cursor: Option<String>,
            }
            let req = get(&["devices"]).query(&Q { limit: 2, cursor })?;
            let (env, meta) = t.send_json::<CursorEnvelope>(&req).await?;
            let next = if env.meta.pagination.has_more {
                Some(PageToken::Cursor(
                    env.meta.pagination.next.unwrap_or_default(),
                ))
            } else {
                None
            };
            Ok(Page::new(env.data, next, None, meta))
        })
    })
}

fn page(data: &[u32], next: Option<&str>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "data": data,
        "meta": {"request_id": "req_p", "pagination": {"limit": 2, "next": next, "has_more": next.is_some()}}
    }))
}

async fn mount_page(server: &MockServer, cursor: Option<&str>, body: ResponseTemplate) {
    let m = Mock::given(method("GET"))
        .and(path("/v1/devices"))
        .and(query_param("limit", "2"));
    let m = match cursor {
        Some(c) => m.and(query_param("cursor", c)),
        None => m.and(query_param_is_missing("cursor")),
    };
    m.respond_with(body).expect(1).mount(server).await;
}

#[tokio::test]
async fn cursor_paging_in_order_without_loss_or_repeats() {
    let server = MockServer::start().await;
    mount_page(&server, None, page(&[1, 2], Some("c1"))).await;
    mount_page(&server, Some("c1"), page(&[3, 4], Some("c2"))).await;
    mount_page(&server, Some("c2"), page(&[5], None)).await;
    catch_all(&server).await;
    let items: Vec<u32> = PageStream::new(cursor_pages(client(&server)), None)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items, vec![1, 2, 3, 4, 5]);
    // `.expect(1)` on each page: verified on drop; nothing after the last page.
    assert_eq!(request_count(&server).await, 3);
}

#[tokio::test]
async fn repeated_cursor_from_the_server_errors() {
    let server = MockServer::start().await;
    mount_page(&server, None, page(&[1, 2], Some("c1"))).await;
    mount_page(&server, Some("c1"), page(&[3, 4], Some("c1"))).await;
    catch_all(&server).await;
    let got: Vec<_> = PageStream::new(cursor_pages(client(&server)), None)
        .items()
        .collect()
        .await;
    assert_eq!(got.len(), 5);
    let err = got[4].as_ref().unwrap_err();
    assert!(matches!(err, Error::Protocol(_)));
    assert_eq!(err.request_id(), Some("req_p"));
    assert!(err.to_string().contains("GET /v1/devices"), "{err}");
}

#[tokio::test]
async fn an_error_mid_stream_is_yielded_and_ends_it() {
    let server = MockServer::start().await;
    mount_page(&server, None, page(&[1, 2], Some("c1"))).await;
    Mock::given(query_param("cursor", "c1"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(
                json!({"error": {"code": "not_found", "message": "cursor expired"}}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let got: Vec<_> = PageStream::new(cursor_pages(client(&server)), None)
        .items()
        .collect()
        .await;
    assert_eq!(got.len(), 3);
    assert!(got[2].as_ref().unwrap_err().is_not_found());
}

#[tokio::test]
async fn prefetch_over_http_gives_the_same_items() {
    let server = MockServer::start().await;
    mount_page(&server, None, page(&[1, 2], Some("c1"))).await;
    mount_page(&server, Some("c1"), page(&[3, 4], Some("c2"))).await;
    mount_page(&server, Some("c2"), page(&[5], None)).await;
    let items: Vec<u32> = PageStream::new(cursor_pages(client(&server)), None)
        .items()
        .prefetch(true)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items, vec![1, 2, 3, 4, 5]);
}

#[derive(Deserialize)]
struct OffsetEnvelope {
    data: Vec<u32>,
    pagination: OffsetPagination,
}
#[derive(Deserialize)]
struct OffsetPagination {
    total: u64,
    offset: u64,
}

#[tokio::test]
async fn offset_paging_to_total() {
    let server = MockServer::start().await;
    for (offset, data) in [
        (0u64, vec![10, 11, 12]),
        (3, vec![13, 14, 15]),
        (6, vec![16]),
    ] {
        Mock::given(path("/v1/devices"))
            .and(query_param("limit", "3"))
            .and(query_param("offset", offset.to_string().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": data, "pagination": {"total": 7, "limit": 3, "offset": offset}
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    catch_all(&server).await;
    let t = client(&server);
    let fetch: FetchPage<u32> = Arc::new(move |token| {
        let t = t.clone();
        Box::pin(async move {
            let offset = match token {
                Some(PageToken::Offset(o)) => o,
                _ => 0,
            };
            let req = get(&["devices"]).query(&[("limit", 3), ("offset", offset)])?;
            let (env, meta) = t.send_json::<OffsetEnvelope>(&req).await?;
            let end = env.pagination.offset + env.data.len() as u64;
            let next = (end < env.pagination.total && !env.data.is_empty())
                .then_some(PageToken::Offset(end));
            Ok(Page::new(env.data, next, Some(env.pagination.total), meta))
        })
    });
    let pages: Vec<Page<u32>> = PageStream::new(fetch, None).try_collect().await.unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0].total(), Some(7));
    assert_eq!(pages[0].next_offset(), Some(3));
    let items: Vec<u32> = pages.into_iter().flatten().collect();
    assert_eq!(items, (10..17).collect::<Vec<_>>());
}
