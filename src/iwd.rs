//! Step 4, *apply*: the calls to the IWD provisioning API.
//!
//! The operator always uses `POST /iwd/v3/provisioning`: the vendor document says
//! POST and PUT "currently serve the same purpose" (both create and re-apply), so
//! one verb keeps the behaviour the same for a first call and a re-assert.
//! Status codes are read as the project's API document says: 2xx success;
//! 400/422 rejected; 401/403 unauthorized; 404 on DELETE already gone; 409, 429,
//! 5xx, timeouts and connection errors transient (honouring `Retry-After`).

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::body::{self, RequestBody};
use crate::error::Error;
use crate::keyfile::KeyFile;
use crate::limiter::Limiter;
use crate::metrics::Metrics;

/// How much of IWD's error text a message keeps.
const MAX_MESSAGE: usize = 300;

/// A client for one operator: the admin key, the limiter and the HTTP client.
pub struct IwdClient {
    http: reqwest::Client,
    key: Arc<KeyFile>,
    limiter: Limiter,
    /// Cleared when leadership is lost: calls stop at once.
    may_call: Arc<std::sync::atomic::AtomicBool>,
    metrics: Arc<Metrics>,
}

/// What a DELETE found.
#[derive(Debug, PartialEq, Eq)]
pub enum Deleted {
    Removed,
    AlreadyGone,
}

/// What to remove on delete.
pub enum Removal<'a> {
    Services(&'a [crate::crd::IwdService]),
    Tenant,
}

impl IwdClient {
    pub fn new(
        http: reqwest::Client,
        key: Arc<KeyFile>,
        limiter: Limiter,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            http,
            key,
            limiter,
            may_call: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            metrics,
        }
    }

    /// The switch that stops every further call (set false on losing the Lease).
    pub fn call_switch(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.may_call.clone()
    }

    /// Builds the HTTP client: rustls with the platform's roots plus an optional
    /// CA bundle, and a timeout bounding every call.
    pub fn http_client(
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("iwd-operator/", env!("CARGO_PKG_VERSION")))
            // Never follow a redirect: it would carry the x-api-key (and the body's
            // secrets) to another address, or turn a POST into a GET.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(builder.build()?)
    }

    /// The current admin key, for keyed digests that must change when it does
    /// (empty when it cannot be read).
    pub fn admin_key_bytes(&self) -> SecretString {
        self.key
            .key()
            .unwrap_or_else(|_| SecretString::from(String::new()))
    }

    fn admin_key(&self) -> Result<SecretString, Error> {
        self.key
            .key()
            .map_err(|message| Error::IwdUnauthorized { status: 0, message })
    }

    /// `POST {base}/iwd/v3/provisioning`.
    pub async fn provision(&self, base_url: &str, body: &RequestBody) -> Result<(), Error> {
        let key = self.admin_key()?;
        let url = format!("{}/iwd/v3/provisioning", base_url.trim_end_matches('/'));
        let request = self
            .http
            .post(url)
            .header("x-api-key", key.expose_secret())
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_json());
        let mut secrets = Vec::new();
        body::secret_values(&body.root, &mut secrets);
        secrets.push(key);
        match self.send("POST", request, &secrets).await? {
            Answer::Success => Ok(()),
            Answer::NotFound(message) => Err(Error::IwdRejected {
                status: 404,
                message,
            }),
        }
    }

    /// `DELETE {base}/iwd/v3/provisioning/{ccid}?service=...|deleteTenant=true`.
    pub async fn deprovision(
        &self,
        base_url: &str,
        ccid: &str,
        removal: Removal<'_>,
    ) -> Result<Deleted, Error> {
        let key = self.admin_key()?;
        let mut url = reqwest::Url::parse(&format!(
            "{}/iwd/v3/provisioning/",
            base_url.trim_end_matches('/')
        ))
        .map_err(|e| Error::IwdRejected {
            status: 0,
            message: format!("invalid IWD URL: {e}"),
        })?;
        url.path_segments_mut()
            .map_err(|_| Error::IwdRejected {
                status: 0,
                message: "invalid IWD URL".into(),
            })?
            .pop_if_empty()
            .push(ccid);
        // Written as the vendor document shows it (a literal comma); the service
        // names are fixed identifiers that need no escaping.
        let query = match removal {
            Removal::Services(services) => {
                let names: Vec<&str> = services.iter().map(|s| s.as_str()).collect();
                format!("service={}", names.join(","))
            }
            Removal::Tenant => "deleteTenant=true".to_owned(),
        };
        url.set_query(Some(&query));
        let request = self
            .http
            .delete(url)
            .header("x-api-key", key.expose_secret());
        match self.send("DELETE", request, &[key]).await? {
            Answer::Success => Ok(Deleted::Removed),
            Answer::NotFound(_) => Ok(Deleted::AlreadyGone),
        }
    }

    async fn send(
        &self,
        method: &'static str,
        request: reqwest::RequestBuilder,
        secrets: &[SecretString],
    ) -> Result<Answer, Error> {
        // A child span of the reconcile's, per call.
        let span = tracing::info_span!("iwd_call", method, status = tracing::field::Empty);
        tracing::Instrument::instrument(self.send_in_span(method, request, secrets), span).await
    }

    async fn send_in_span(
        &self,
        method: &'static str,
        request: reqwest::RequestBuilder,
        secrets: &[SecretString],
    ) -> Result<Answer, Error> {
        self.metrics.iwd_calls_waiting.inc();
        let permit = self.limiter.acquire().await;
        self.metrics.iwd_calls_waiting.dec();
        self.metrics
            .rate_limiter_wait
            .observe(permit.waited.as_secs_f64());
        let started = std::time::Instant::now();
        // A replica that lost its Lease makes no further call (another leads now).
        if !self.may_call.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::IwdUnavailable {
                message: "this replica is no longer the leader".into(),
                retry_after: None,
            });
        }
        let sent = request.send().await;
        self.metrics.iwd_call(
            method,
            sent.as_ref().ok().map(|r| r.status().as_u16()),
            started.elapsed(),
        );
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_builder() => {
                return Err(Error::IwdUnauthorized {
                    status: 0,
                    message: "the request could not be built: check --iwd-url and that the key file holds a plain text key".into(),
                });
            }
            Err(error) => {
                let what = if error.is_timeout() {
                    "the call timed out"
                } else if error.is_connect() {
                    "cannot connect"
                } else {
                    "the connection failed"
                };
                return Err(Error::IwdUnavailable {
                    message: what.into(),
                    retry_after: None,
                });
            }
        };
        let status = response.status().as_u16();
        tracing::Span::current().record("status", status);
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
        let text = response.text().await.unwrap_or_default();
        let message = || error_text(status, &text, secrets);
        match status {
            200..=299 => Ok(Answer::Success),
            404 => Ok(Answer::NotFound(message())),
            401 | 403 => Err(Error::IwdUnauthorized {
                status,
                message: message(),
            }),
            300..=399 => Err(Error::IwdRejected {
                status,
                message: "IWD answered with a redirect, which the operator does not follow; set --iwd-url to the final address".into(),
            }),
            408 | 409 | 429 | 500..=599 => Err(Error::IwdUnavailable {
                message: format!("HTTP {status}: {}", message()),
                retry_after,
            }),
            _ => Err(Error::IwdRejected {
                status,
                message: message(),
            }),
        }
    }
}

enum Answer {
    Success,
    NotFound(String),
}

/// IWD's error text: the `message`/`error` of a JSON body or the plain text, with
/// every secret value of the request replaced, on one line, cut to a sane length.
pub fn error_text(status: u16, body: &str, secrets: &[SecretString]) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            match (field("error"), field("message")) {
                (Some(error), Some(message)) if error != message => {
                    Some(format!("{error}: {message}"))
                }
                (_, Some(message)) => Some(message),
                (Some(error), None) => Some(error),
                _ => None,
            }
        });
    let mut text = from_json.unwrap_or_else(|| body.to_owned());
    for secret in secrets {
        let value = secret.expose_secret();
        if value.is_empty() {
            continue;
        }
        // As sent, and as it would appear inside a JSON string.
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        for form in [value, escaped] {
            text = text.replace(form, "<redacted>");
        }
    }
    let mut text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        text = format!("HTTP {status} with an empty body");
    }
    if text.chars().count() > MAX_MESSAGE {
        text = text.chars().take(MAX_MESSAGE).collect::<String>() + "…";
    }
    text
}

/// The longest `Retry-After` honoured: a larger one (or a date further ahead)
/// is cut to this, so that a misconfigured IWD cannot park tenants for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// `Retry-After` as RFC 9110 gives it: delay seconds or an HTTP-date (a date in
/// the past means now). Capped at [`MAX_RETRY_AFTER`].
fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = jiff::fmt::rfc2822::DateTimeParser::new()
                .parse_timestamp(value)
                .ok()?;
            Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2026-12-04T10:00:00Z".parse().unwrap();
        let secs = |v| parse_retry_after(v, now).map(|d| d.as_secs());
        assert_eq!(secs("120"), Some(120));
        assert_eq!(secs(" 7 "), Some(7));
        assert_eq!(secs("Fri, 04 Dec 2026 10:01:30 GMT"), Some(90));
        assert_eq!(
            secs("Fri, 04 Dec 2026 09:00:00 GMT"),
            Some(0),
            "past date: now"
        );
        assert_eq!(secs("86400"), Some(15 * 60), "capped");
        assert_eq!(
            secs("Sat, 05 Dec 2026 10:00:00 GMT"),
            Some(15 * 60),
            "capped"
        );
        assert_eq!(secs("soon"), None);
        assert_eq!(secs("-5"), None);
    }

    #[test]
    fn error_texts_are_scrubbed_and_cut() {
        let secrets = [SecretString::from("hunter2")];
        assert_eq!(
            error_text(
                400,
                r#"{"error":"Bad Request","message":"iwd.db.port must be a number"}"#,
                &secrets
            ),
            "Bad Request: iwd.db.port must be a number"
        );
        assert_eq!(
            error_text(400, "password hunter2 rejected\n\tby db", &secrets),
            "password <redacted> rejected by db"
        );
        assert_eq!(error_text(500, "", &secrets), "HTTP 500 with an empty body");
        let long = "x".repeat(5000);
        assert_eq!(
            error_text(500, &long, &secrets).chars().count(),
            MAX_MESSAGE + 1
        );
    }
}
