//! SiliconWit offset paging to `total`: sequential and concurrent agree, also while the list
//! changes (removals, insertions, a change mid-concurrent read), errors and a server that repeats
//! itself.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use iot_sdk::Error;
use iot_sdk::siliconwit::Client;
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, Request, ResponseTemplate};

use common::siliconwit::setup;

/// A server holding a list of devices that `mutate` may change after each request.
fn paged_devices(
    list: Arc<Mutex<Vec<String>>>,
    calls: Arc<AtomicUsize>,
    mutate: impl Fn(usize, &mut Vec<String>) + Send + Sync + 'static,
) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static {
    move |req: &Request| {
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        let limit: usize = q.get("limit").map_or(50, |l| l.parse().unwrap());
        let offset: usize = q.get("offset").map_or(0, |o| o.parse().unwrap());
        let mut l = list.lock().unwrap();
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let body = {
            let data: Vec<Value> = l
                .iter()
                .skip(offset)
                .take(limit)
                .map(|id| json!({"id": id, "name": id, "status": "active"}))
                .collect();
            json!({"data": data, "pagination": {"total": l.len(), "limit": limit, "offset": offset}})
        };
        mutate(n, &mut l);
        ResponseTemplate::new(200).set_body_json(body)
    }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("dev_{i:04}")).collect()
}

async fn collect(sw: &Client, concurrent: Option<usize>) -> Vec<String> {
    let mut list = sw.devices().list().limit(7);
    if let Some(c) = concurrent {
        list = list.concurrent(c);
    }
    list.items()
        .map_ok(|d| d.id.to_string())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn offset_paging_to_total_sequential_and_concurrent_agree() {
    let (server, sw) = setup().await;
    let list = Arc::new(Mutex::new(ids(100)));
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/v1/devices"))
        .respond_with(paged_devices(list, calls.clone(), |_, _| {}))
        .mount(&server)
        .await;
    let seq = collect(&sw, None).await;
    assert_eq!(seq, ids(100));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        15,
        "ceil(100 / 7) pages and not one more"
    );
    let conc = collect(&sw, Some(4)).await;
    assert_eq!(conc, seq, "same items in the same order");
    assert_eq!(calls.load(Ordering::SeqCst), 30);
}

#[tokio::test]
async fn items_removed_during_sequential_paging_are_not_skipped() {
    let (server, sw) = setup().await;
    let list = Arc::new(Mutex::new(ids(30)));
    let calls = Arc::new(AtomicUsize::new(0));
    // After the first page (0..7) is served, dev_0001 and dev_0002 are deleted: everything
    // shifts left by two.
    Mock::given(path("/v1/devices"))
        .respond_with(paged_devices(list, calls, |n, l| {
            if n == 0 {
                l.retain(|id| id != "dev_0001" && id != "dev_0002");
            }
        }))
        .mount(&server)
        .await;
    let got = collect(&sw, None).await;
    // Every device that still exists is there, in order; the deleted ones were read before.
    assert_eq!(got, ids(30), "nothing lost, nothing repeated");
}

#[tokio::test]
async fn items_inserted_at_the_front_during_paging_are_not_repeated() {
    let (server, sw) = setup().await;
    let list = Arc::new(Mutex::new(ids(20)));
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/v1/devices"))
        .respond_with(paged_devices(list, calls, |n, l| {
            if n == 0 {
                l.insert(0, "dev_new".into());
            }
        }))
        .mount(&server)
        .await;
    let got = collect(&sw, None).await;
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "no repeats: {got:?}");
    assert_eq!(got, ids(20), "the 20 original devices, in order");
}

#[tokio::test]
async fn a_change_during_concurrent_paging_falls_back_to_a_sequential_reread() {
    let (server, sw) = setup().await;
    let list = Arc::new(Mutex::new(ids(50)));
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/v1/devices"))
        .respond_with(paged_devices(list.clone(), calls.clone(), |n, l| {
            if n == 1 {
                l.retain(|id| id != "dev_0003");
                l.push("dev_late".into());
                l.push("dev_later".into());
            }
        }))
        .mount(&server)
        .await;
    let got = collect(&sw, Some(3)).await;
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "no repeats");
    // Every device present at the end is there (dev_0003 too: it was read before it went).
    let end: Vec<String> = list.lock().unwrap().clone();
    for id in &end {
        assert!(got.contains(id), "{id} lost");
    }
    assert!(got.contains(&"dev_0003".to_string()));
    assert!(calls.load(Ordering::SeqCst) > 8, "the re-read happened");
}

#[tokio::test]
async fn an_error_in_concurrent_paging_is_yielded_and_ends_it() {
    let (server, sw) = setup().await;
    Mock::given(path("/v1/devices"))
        .and(wiremock::matchers::query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "dev_1", "name": "a", "status": "active"}],
            "pagination": {"total": 3, "limit": 1, "offset": 0}
        })))
        .mount(&server)
        .await;
    Mock::given(path("/v1/devices"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"error": "Account suspended"})),
        )
        .mount(&server)
        .await;
    let got: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(sw.devices().list().limit(1).concurrent(2).items())
            .await;
    assert_eq!(got.len(), 2);
    assert!(got[1].as_ref().unwrap_err().is_forbidden());
}

#[tokio::test]
async fn a_server_that_repeats_itself_is_stopped_not_followed_to_total() {
    let (server, sw) = setup().await;
    // Claims a billion devices but always sends the same one.
    Mock::given(path("/v1/devices"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "dev_same", "name": "n", "status": "active"}],
            "pagination": {"total": 1_000_000_000u64, "limit": 1, "offset": 0}
        })))
        .mount(&server)
        .await;
    let got: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(sw.devices().list().limit(1).items()).await;
    assert_eq!(got.len(), 2, "the device once, then the error");
    assert!(matches!(got[1], Err(Error::Protocol(_))), "{:?}", got[1]);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        11,
        "1 + 10 pages of repeats"
    );

    // Concurrently: the same, give or take the pages in flight when it stopped.
    let got: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(sw.devices().list().limit(1).concurrent(4).items())
            .await;
    assert_eq!(got.len(), 2);
    assert!(matches!(got[1], Err(Error::Protocol(_))), "{:?}", got[1]);
    let sent = server.received_requests().await.unwrap().len() - 11;
    assert!((11..=15).contains(&sent), "{sent} requests");
}
