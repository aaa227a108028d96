//! [`S3Client`]: sends signed S3 REST requests over one HTTPS client (reqwest on rustls with
//! aws-lc-rs, the stack the OAuth code already links), with bounded retries like the SDK's
//! standard mode: 3 attempts, exponential backoff with full jitter, on connection failures,
//! timeouts, 5xx, 429 and S3's throttling and transient codes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use bytes::Bytes;
use reqwest::Method;
use tokio::sync::OnceCell;

use super::Operation;
use super::endpoint::{Endpoint, Trust};
use super::error::{S3Error, transport};
use super::sign::{CredentialsCache, ToSign, sha256_hex, sign_request};

/// Attempts per call (the SDK's standard mode).
const MAX_ATTEMPTS: u32 = 3;
/// The first retry waits up to this long, the second up to twice as long (the SDK's initial
/// backoff).
const BASE_BACKOFF: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt, connection to the last byte of the answer; an upload gets a second more per MB
/// of body on top (Microsoft 365 allows 150 MB messages; in-region S3 moves them in seconds).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// One S3 request: the operation (for IAM, errors and logs), its target and its body.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub operation: Operation,
    pub method: Method,
    pub bucket: &'a str,
    pub key: Option<&'a str>,
    pub query: Vec<(&'a str, &'a str)>,
    /// Extra headers, all signed (lower-case names).
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl<'a> Request<'a> {
    pub(crate) fn new(operation: Operation, method: Method, bucket: &'a str) -> Self {
        Self {
            operation,
            method,
            bucket,
            key: None,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub(crate) fn key(mut self, key: &'a str) -> Self {
        self.key = Some(key);
        self
    }

    pub(crate) fn query(mut self, name: &'a str, value: &'a str) -> Self {
        self.query.push((name, value));
        self
    }

    pub(crate) fn body(mut self, content_type: Option<&str>, body: Bytes) -> Self {
        if let Some(content_type) = content_type {
            self.headers.push(("content-type", content_type.to_owned()));
        }
        self.body = body;
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub body: Bytes,
}

/// The S3 client: endpoint, region and credentials from the SDK configuration, the HTTPS client
/// built on first use (so init loads no roots). Cheap to clone.
#[derive(Debug, Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoint: Endpoint,
    region: Option<String>,
    credentials: CredentialsCache,
    http: OnceCell<reqwest::Client>,
}

impl S3Client {
    /// The client for `config`'s region, credentials and endpoint; `force_path_style` also
    /// addresses AWS path-style (an override is always path-style).
    pub fn new(config: &SdkConfig, force_path_style: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                endpoint: Endpoint::resolve(config, force_path_style),
                region: config.region().map(|r| r.as_ref().to_owned()),
                credentials: CredentialsCache::new(config.credentials_provider()),
                http: OnceCell::new(),
            }),
        }
    }

    /// The configured region.
    #[cfg_attr(not(feature = "provision"), allow(dead_code))]
    pub(crate) fn region(&self) -> Option<&str> {
        self.inner.region.as_deref()
    }

    /// Sends `request`, retrying what may pass on another attempt; the body is kept as
    /// [`Bytes`], so every attempt sends (and signs) the same bytes.
    pub(crate) async fn send(&self, request: Request<'_>) -> Result<Answer, S3Error> {
        let region = self.inner.region.as_deref().ok_or(S3Error::NoRegion)?;
        let url = self
            .inner
            .endpoint
            .url(region, request.bucket, request.key, &request.query);
        let payload_sha256 = sha256_hex(&request.body);
        let mut attempt = 1;
        loop {
            let result = self
                .attempt(&request, region, &url, payload_sha256.clone())
                .await;
            match result {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    let delay = backoff(attempt);
                    tracing::warn!(operation = ?request.operation, attempt, delay_ms = delay.as_millis() as u64, error = %e, "S3 call failed, retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One signed attempt (signed anew: the date and the credentials may have moved on).
    async fn attempt(
        &self,
        request: &Request<'_>,
        region: &str,
        url: &str,
        payload_sha256: String,
    ) -> Result<Answer, S3Error> {
        let operation = request.operation;
        let mut headers: Vec<(&str, String)> = request.headers.clone();
        if !request.body.is_empty() || request.method == Method::PUT {
            headers.push(("content-length", request.body.len().to_string()));
        }
        let credentials = self.inner.credentials.get().await?;
        let signed = sign_request(
            credentials,
            region,
            SystemTime::now(),
            &ToSign {
                method: request.method.as_str(),
                url,
                headers: &headers,
                payload_sha256,
            },
        )?;
        let mut builder = self
            .http()
            .await?
            .request(request.method.clone(), url)
            .timeout(ATTEMPT_TIMEOUT + Duration::from_secs(request.body.len() as u64 >> 20))
            .body(request.body.clone());
        for (name, value) in &headers {
            builder = builder.header(*name, value);
        }
        for header in signed {
            let mut value = reqwest::header::HeaderValue::try_from(header.value)
                .map_err(|e| S3Error::Signing(format!("{}: {e}", header.name)))?;
            value.set_sensitive(header.sensitive);
            builder = builder.header(header.name, value);
        }
        let response = builder.send().await.map_err(|e| transport(operation, e))?;
        let status = response.status();
        // Read the whole answer inside the attempt: a body cut short is retried too.
        let body = response
            .bytes()
            .await
            .map_err(|e| transport(operation, e))?;
        if status.is_success() {
            Ok(Answer { body })
        } else {
            Err(S3Error::from_answer(operation, status.as_u16(), &body))
        }
    }

    async fn http(&self) -> Result<&reqwest::Client, S3Error> {
        self.inner
            .http
            .get_or_try_init(|| async { https_client(self.inner.endpoint.trust()) })
            .await
    }
}

/// Full jitter: a random wait up to `BASE_BACKOFF × 2^(attempt − 1)`.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BASE_BACKOFF * 2u32.pow(attempt.saturating_sub(1).min(4));
    ceiling.mul_f64(rand::random::<f64>())
}

/// The HTTPS client: aws-lc-rs rustls trusting `trust`'s roots, HTTP/1.1 (S3 speaks nothing
/// else), no redirects (S3's are wrong-region answers, errors here as in the SDK), no proxy
/// variables (the SDK reads none), bounded connect and attempt times.
fn https_client(trust: Trust) -> Result<reqwest::Client, S3Error> {
    let mut roots = rustls::RootCertStore::empty();
    let added = match trust {
        Trust::Amazon => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs = CertificateDer::pem_slice_iter(crate::AMAZON_ROOTS)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| S3Error::Client(format!("Amazon's roots: {e}")))?;
            roots.add_parsable_certificates(certs).0
        }
        Trust::System => {
            let loaded = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(loaded.certs).0
        }
    };
    if added == 0 {
        return Err(S3Error::Client(
            "no trusted root certificates (check SSL_CERT_FILE)".to_owned(),
        ));
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| S3Error::Client(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!("mailroom/", env!("CARGO_PKG_VERSION"), " s3"))
        .build()
        .map_err(|e| S3Error::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_and_bounded() {
        for attempt in 1..=3 {
            for _ in 0..50 {
                assert!(backoff(attempt) <= BASE_BACKOFF * 2u32.pow(attempt - 1));
            }
        }
    }

    #[test]
    fn the_amazon_roots_make_a_client() {
        assert!(https_client(Trust::Amazon).is_ok());
    }
}
