//! Webhook subscriptions: the endpoints SGT pushes events to, and their signing secrets.
//!
//! | call | endpoint |
//! |---|---|
//! | [`Webhooks::list`] | `GET /webhooks` |
//! | [`Webhooks::create`] | `POST /webhooks` (returns the generated signing secret, once) |
//! | [`Webhooks::update`] | `PATCH /webhooks/{id}` (events, URL, active, secret rotation; `If-Match`) |
//! | [`Webhooks::delete`] | `DELETE /webhooks/{id}` |
//! | [`Webhooks::test`] | `POST /webhooks/{id}/test` (a signed test payload to your receiver) |
//!
//! A signing secret is a [`WebhookSecret`]: redacted in `Debug`, no `Display`, never in an
//! error (responses that carry one are decoded without a body snippet). Store it where your
//! receiver can read it; the server does not show it again.
//!
//! Receiver URLs must be absolute `http` or `https` URLs. The spec does not require `https` for
//! receivers, so `http://` is accepted; use `https` anywhere but a lab.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{Client, WebhookId, Wire};
use crate::List;
use crate::call::Call;
use crate::envelope::{self, Envelope, no_content};
use crate::error::{Error, Result};
use crate::transport::{Request, ResponseMeta, Transport};

/// A registered webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Webhook {
    /// `wh_…`.
    pub id: WebhookId,
    /// Where events are delivered.
    pub url: String,
    /// The event types it is subscribed to (`report.ready`, `alarm.raised`, …).
    #[serde(default)]
    pub events: Vec<String>,
    /// Whether deliveries are on.
    #[serde(default)]
    pub active: Option<bool>,
    /// When it was registered.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub created_at: Option<DateTime<Utc>>,
    /// Version tag for `If-Match`: from the body, or the `ETag` header when the body has none.
    #[serde(default)]
    pub etag: Option<String>,
}

/// A webhook signing secret. `Debug` prints `WebhookSecret([REDACTED])`; there is no `Display`.
///
/// ```
/// # use iot_sdk::sgt::WebhookSecret;
/// let s = WebhookSecret::new("whsec_8f3a1c6e");
/// assert_eq!(format!("{s:?}"), "WebhookSecret([REDACTED])");
/// assert_eq!(s.expose(), "whsec_8f3a1c6e");
/// ```
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    /// Wraps a secret (one you stored earlier, to verify signatures with).
    pub fn new(secret: impl Into<String>) -> Self {
        WebhookSecret(SecretString::from(secret.into()))
    }

    /// The secret itself. Call this only to hand it to the code that verifies signatures.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(WebhookSecret::new)
    }
}

/// A newly registered webhook and its signing secret (shown only this once).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreatedWebhook {
    /// The endpoint.
    pub webhook: Webhook,
    /// Its signing secret.
    pub secret: WebhookSecret,
}

/// An updated webhook, and its new signing secret when the update rotated it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpdatedWebhook {
    /// The endpoint as it now is.
    pub webhook: Webhook,
    /// The new secret, when the secret was rotated.
    pub secret: Option<WebhookSecret>,
}

/// The outcome of a test delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookTestResult {
    /// The endpoint tested.
    #[serde(default)]
    pub webhook_id: Option<WebhookId>,
    /// Whether the receiver accepted the payload.
    #[serde(default)]
    pub delivered: Option<bool>,
    /// The HTTP status the receiver answered with.
    #[serde(default)]
    pub response_status: Option<u16>,
    /// When the payload was sent.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub sent_at: Option<DateTime<Utc>>,
}

/// A webhook to register: where to deliver, and which event types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewWebhook {
    url: String,
    events: Vec<String>,
}

impl NewWebhook {
    /// An endpoint at `url` (absolute `http(s)`) subscribed to `events` (`report.ready`, …).
    pub fn new<I, S>(url: impl Into<String>, events: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        NewWebhook {
            url: url.into(),
            events: events.into_iter().map(Into::into).collect(),
        }
    }
}

/// The changes to a webhook; fields left unset are not changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebhookUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rotate_secret: bool,
}

impl WebhookUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the endpoint (absolute `http(s)` URL).
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Replaces the event subscriptions.
    #[must_use]
    pub fn events<I: IntoIterator<Item = S>, S: Into<String>>(mut self, events: I) -> Self {
        self.events = Some(events.into_iter().map(Into::into).collect());
        self
    }

    /// Turns deliveries on or off.
    #[must_use]
    pub fn active(mut self, active: bool) -> Self {
        self.active = Some(active);
        self
    }

    /// Asks for a new signing secret (sent as `"rotate_secret": true`; the spec names the
    /// capability but not the field). The new secret is in [`UpdatedWebhook::secret`].
    #[must_use]
    pub fn rotate_secret(mut self) -> Self {
        self.rotate_secret = true;
        self
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Refuses a receiver URL that is not an absolute `http(s)` URL with a host.
fn check_receiver_url(raw: &str) -> Result<()> {
    let url = url::Url::parse(raw.trim()).map_err(|e| {
        Error::invalid_input(format!("the webhook URL is not a valid absolute URL: {e}"))
    })?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(Error::invalid_input(format!(
            "the webhook URL must be an http(s) URL with a host, not `{}:`",
            url.scheme()
        )));
    }
    Ok(())
}

/// The webhooks of a client. Get one from [`Client::webhooks`].
#[derive(Debug, Clone)]
pub struct Webhooks {
    client: Client,
}

impl Webhooks {
    pub(crate) fn new(client: Client) -> Self {
        Webhooks { client }
    }

    fn transport(&self) -> Transport {
        self.client.transport.clone()
    }

    /// Lists the registered endpoints; `.send()` for one page, `.pages()` or `.items()` to
    /// stream.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use futures::TryStreamExt;
    /// let hooks: Vec<_> = sgt.webhooks().list().items().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> List<Webhook, ()> {
        self.client.list(&["webhooks"], ())
    }

    /// Registers an endpoint; returns it with its signing secret, which the server shows only
    /// this once. A URL that is not an absolute `http(s)` URL is an [`Error::InvalidInput`].
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use iot_sdk::sgt::NewWebhook;
    /// let created = sgt.webhooks()
    ///     .create(NewWebhook::new("https://erp.example.com/hooks/sgt", ["report.ready"]))
    ///     .await?;
    /// store_secret(created.secret.expose());
    /// # Ok(()) }
    /// # fn store_secret(_: &str) {}
    /// ```
    pub fn create(&self, webhook: NewWebhook) -> Call<CreatedWebhook> {
        let req = check_receiver_url(&webhook.url).and_then(|()| {
            Request::new(Method::POST, segments!["webhooks"])
                .json(&webhook)
                .map(Request::sensitive_response)
        });
        Call::new(self.transport(), req, created_webhook)
    }

    /// Changes an endpoint's events, URL or state, or rotates its secret. Add
    /// `.if_match(etag)` so a concurrent change is refused with a conflict (409) instead of
    /// silently overwritten.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client, etag: String) -> iot_sdk::Result<()> {
    /// use iot_sdk::sgt::WebhookUpdate;
    /// let updated = sgt.webhooks()
    ///     .update("wh_01HW3K9F2XZ1A2", WebhookUpdate::new()
    ///         .events(["report.ready", "alarm.raised", "alarm.cleared"])
    ///         .rotate_secret())
    ///     .if_match(etag)
    ///     .await?;
    /// if let Some(secret) = updated.secret {
    ///     store_secret(secret.expose());
    /// }
    /// # Ok(()) }
    /// # fn store_secret(_: &str) {}
    /// ```
    pub fn update(&self, id: impl Into<WebhookId>, update: WebhookUpdate) -> Call<UpdatedWebhook> {
        let id = id.into();
        let req = match &update.url {
            Some(url) => check_receiver_url(url),
            None => Ok(()),
        }
        .and_then(|()| Request::new(Method::PATCH, segments!["webhooks", id]).json(&update))
        .map(Request::sensitive_response);
        Call::new(self.transport(), req, updated_webhook)
    }

    /// Unregisters an endpoint.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// sgt.webhooks().delete("wh_01HW3K9F2XZ1A2").await?;
    /// # Ok(()) }
    /// ```
    pub fn delete(&self, id: impl Into<WebhookId>) -> Call<()> {
        let id = id.into();
        let req = Ok(Request::new(Method::DELETE, segments!["webhooks", id]));
        Call::new(self.transport(), req, no_content)
    }

    /// Sends a signed test payload to the endpoint, to check the receiver.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// let r = sgt.webhooks().test("wh_01HW3K9F2XZ1A2").await?;
    /// println!("delivered: {:?}, receiver said {:?}", r.delivered, r.response_status);
    /// # Ok(()) }
    /// ```
    pub fn test(&self, id: impl Into<WebhookId>) -> Call<WebhookTestResult> {
        let id = id.into();
        let req = Ok(Request::new(
            Method::POST,
            segments!["webhooks", id, "test"],
        ));
        Call::new(self.transport(), req, Wire::call)
    }
}

/// The wire shape of `POST /webhooks`: the webhook's fields and `secret` side by side.
#[derive(Deserialize)]
struct WithSecret {
    #[serde(flatten)]
    webhook: Webhook,
    secret: WebhookSecret,
}

/// The wire shape of `PATCH /webhooks/{id}`: `secret` only when it was rotated.
#[derive(Deserialize)]
struct WithOptionalSecret {
    #[serde(flatten)]
    webhook: Webhook,
    #[serde(default)]
    secret: Option<WebhookSecret>,
}

fn fill_etag(webhook: &mut Webhook, meta: &ResponseMeta) {
    if webhook.etag.is_none() {
        webhook.etag = meta.etag.clone();
    }
}

fn created_webhook(
    t: Transport,
    req: Request,
) -> BoxFuture<'static, Result<(CreatedWebhook, ResponseMeta)>> {
    Box::pin(async move {
        let (mut raw, meta) = envelope::send_one::<WithSecret>(Wire::ONE, &t, &req).await?;
        fill_etag(&mut raw.webhook, &meta);
        let created = CreatedWebhook {
            webhook: raw.webhook,
            secret: raw.secret,
        };
        Ok((created, meta))
    })
}

fn updated_webhook(
    t: Transport,
    req: Request,
) -> BoxFuture<'static, Result<(UpdatedWebhook, ResponseMeta)>> {
    Box::pin(async move {
        let (mut raw, meta) = envelope::send_one::<WithOptionalSecret>(Wire::ONE, &t, &req).await?;
        fill_etag(&mut raw.webhook, &meta);
        let updated = UpdatedWebhook {
            webhook: raw.webhook,
            secret: raw.secret,
        };
        Ok((updated, meta))
    })
}
