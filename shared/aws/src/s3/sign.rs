//! SigV4 for S3 requests: credentials from the SDK configuration's provider, cached until shortly
//! before they expire, and signatures by the `aws-sigv4` crate (the SDK's own signer) over the
//! real SHA-256 of the body, computed with aws-lc-rs.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use tokio::sync::Mutex;

use super::error::S3Error;

/// Credentials are fetched again this long before they expire (Lambda's are valid for hours).
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// How long credentials without an expiry are kept (the SDK identity cache's default).
const NO_EXPIRY_LIFETIME: Duration = Duration::from_secs(900);

/// The hex SHA-256 of `body` (the `x-amz-content-sha256` value).
pub(crate) fn sha256_hex(body: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body).as_ref())
}

/// The base64 SHA-256 of `body` (an `x-amz-checksum-sha256` value).
pub(crate) fn sha256_base64(body: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The credentials of one provider, fetched once and shared until shortly before expiry;
/// concurrent callers wait for one fetch.
#[derive(Debug)]
pub(crate) struct CredentialsCache {
    provider: Option<SharedCredentialsProvider>,
    cached: Mutex<Option<(Credentials, SystemTime)>>,
}

impl CredentialsCache {
    pub(crate) fn new(provider: Option<SharedCredentialsProvider>) -> Self {
        Self {
            provider,
            cached: Mutex::new(None),
        }
    }

    /// Valid credentials, from the cache or the provider.
    pub(crate) async fn get(&self) -> Result<Credentials, S3Error> {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if let Some((credentials, refresh_at)) = cached.as_ref()
            && now < *refresh_at
        {
            return Ok(credentials.clone());
        }
        let provider = self.provider.as_ref().ok_or_else(|| {
            S3Error::Credentials("no credentials provider is configured".to_owned())
        })?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            S3Error::Credentials(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
        })?;
        let refresh_at = match credentials.expiry() {
            Some(expiry) => expiry
                .checked_sub(REFRESH_BEFORE_EXPIRY)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            None => now + NO_EXPIRY_LIFETIME,
        };
        tracing::debug!("fetched AWS credentials for S3");
        *cached = Some((credentials.clone(), refresh_at));
        Ok(credentials)
    }
}

/// What to sign: the request line, the headers to sign besides the ones SigV4 adds (`host` comes
/// from the URL), and the body's hex SHA-256.
#[derive(Debug)]
pub(crate) struct ToSign<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'a str, String)],
    pub payload_sha256: String,
}

/// A header to add to the request; `sensitive` ones (the signature, the session token) are
/// marked so that no log prints them.
#[derive(Debug)]
pub(crate) struct SignedHeader {
    pub name: &'static str,
    pub value: String,
    pub sensitive: bool,
}

/// Signs `request` for S3 in `region` at `time`: returns `x-amz-date`, `x-amz-content-sha256`,
/// `authorization` and, with temporary credentials, `x-amz-security-token`. S3 signs the path as
/// sent (single encoding, no normalization) and the payload's hash in its header.
pub(crate) fn sign_request(
    credentials: Credentials,
    region: &str,
    time: SystemTime,
    request: &ToSign<'_>,
) -> Result<Vec<SignedHeader>, S3Error> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = Identity::from(credentials);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| S3Error::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str())),
        SignableBody::Precomputed(request.payload_sha256.clone()),
    )
    .map_err(|e| S3Error::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| S3Error::Signing(e.to_string()))?
        .into_parts();
    let (headers, _params) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| SignedHeader {
            name: h.name(),
            value: h.value().to_owned(),
            // The signature too: aws-sigv4 marks only the session token.
            sensitive: h.sensitive() || h.name() == "authorization",
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published SigV4 example for S3 (Amazon S3 API reference, "Signature calculations
    /// for the Authorization header", example GET Object): the same credentials, time, request
    /// and expected signature, recomputed independently with Python's hmac/hashlib too.
    #[test]
    fn signs_the_published_s3_get_object_example() {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        );
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24
        let headers = [("range", "bytes=0-9".to_owned())];
        let signed = sign_request(
            credentials,
            "us-east-1",
            time,
            &ToSign {
                method: "GET",
                url: "https://examplebucket.s3.amazonaws.com/test.txt",
                headers: &headers,
                payload_sha256: sha256_hex(b""),
            },
        )
        .unwrap();
        let authorization = signed.iter().find(|h| h.name == "authorization").unwrap();
        assert_eq!(
            authorization.value,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert!(authorization.sensitive);
        assert!(signed.iter().any(|h| h.name == "x-amz-content-sha256"
            && h.value == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        assert!(
            signed
                .iter()
                .any(|h| h.name == "x-amz-date" && h.value == "20130524T000000Z")
        );
    }

    #[test]
    fn hashes_are_hex_and_base64_of_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_base64(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }
}
