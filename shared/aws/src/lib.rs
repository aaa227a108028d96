//! Mailroom's AWS adapters: a DynamoDB item store, a KMS key service, an S3 blob store and an
//! SQS job queue, with provisioning of the resources they use. Clients are built once from one
//! SDK configuration and shared.

pub mod deployment;
mod dynamo;
mod error;
mod kms;
pub mod provision;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "sqs")]
mod sqs;

pub use aws_config::SdkConfig;
pub use dynamo::{DynamoStore, GSI1};
pub use kms::KmsKeys;
pub use provision::{AwsSettings, ProvisionError, Provisioned};
#[cfg(feature = "s3")]
pub use s3::{Operation as S3Operation, S3Blobs, S3Client, S3Error};
#[cfg(feature = "sqs")]
pub use sqs::SqsQueue;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::SharedHttpClient;

/// The roots AWS service endpoints chain to (Amazon Trust Services: Amazon Root CA 1–4, and
/// Starfield Services Root G2 which cross-signs them), the trust AWS documents for its SDKs.
pub(crate) const AMAZON_ROOTS: &[u8] = include_bytes!("amazon_roots.pem");

/// Loads the SDK configuration from the environment (credentials, region, and
/// `AWS_ENDPOINT_URL` for local servers such as moto). Against AWS itself the SDK's HTTPS client
/// (and the S3 client's, see `s3/endpoint.rs`) trusts only Amazon's roots: five certificates instead of reading and parsing the system's
/// whole store, which was half of every function's init. With a custom endpoint (an emulator,
/// perhaps behind another CA) the system's roots are used as before.
pub async fn load_sdk_config() -> SdkConfig {
    let custom_endpoint = std::env::vars_os().any(|(name, _)| {
        name.to_str()
            .is_some_and(|n| n.starts_with("AWS_ENDPOINT_URL"))
    });
    load((!custom_endpoint).then(amazon_https_client)).await
}

/// The SDK's HTTPS client trusting Amazon's roots only.
fn amazon_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS);
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        // Only fails on an invalid PEM; this one is compiled in and checked by a test.
        .unwrap_or_default();
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https()
}

/// The SDK's default chains (feature `default-chain`: the local host and tests): credentials and
/// region from the environment, profile files, web identity, ECS or IMDS, and per-service
/// `AWS_ENDPOINT_URL_<SERVICE>` variables.
#[cfg(feature = "default-chain")]
async fn load(client: Option<SharedHttpClient>) -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest());
    match client {
        Some(client) => loader.http_client(client).load().await,
        None => loader.load().await,
    }
}

/// Lambda builds: region, credentials and `AWS_ENDPOINT_URL` (emulators) from the variables Lambda
/// sets, nothing else. The default chains above (profile parsing, STS web identity, ECS, IMDS)
/// were ~0.4 MB of every function binary and never run in Lambda. Retries, timeouts, the
/// identity cache and the sleep and time sources are the clients' defaults, as with the chains.
#[cfg(not(feature = "default-chain"))]
async fn load(client: Option<SharedHttpClient>) -> SdkConfig {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_sdk_dynamodb::config::SharedCredentialsProvider;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ));
    config.set_region(
        var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .map(aws_config::Region::new),
    );
    config.set_endpoint_url(var("AWS_ENDPOINT_URL"));
    config.set_http_client(client);
    config.build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_amazon_roots_are_five_certificates() {
        let pem = String::from_utf8_lossy(super::AMAZON_ROOTS);
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        assert!(
            aws_smithy_http_client::tls::TlsContext::builder()
                .with_trust_store(
                    aws_smithy_http_client::tls::TrustStore::empty()
                        .with_native_roots(false)
                        .with_pem_certificate(super::AMAZON_ROOTS)
                )
                .build()
                .is_ok()
        );
    }
}

/// The service clients, built once per process (S3 and SQS only with their features).
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    /// Mailroom's own S3 client (not the SDK's: see `s3/mod.rs`).
    #[cfg(feature = "s3")]
    pub s3: S3Client,
    #[cfg(feature = "sqs")]
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    #[cfg_attr(not(feature = "s3"), allow(unused_variables))]
    pub fn new(config: &SdkConfig, s3_force_path_style: bool) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            #[cfg(feature = "s3")]
            s3: S3Client::new(config, s3_force_path_style),
            #[cfg(feature = "sqs")]
            sqs: aws_sdk_sqs::Client::new(config),
        }
    }
}

/// The adapters this build has (the blob store and the queue only with the `s3` and `sqs`
/// features), on provisioned resources.
#[derive(Debug, Clone)]
pub struct AwsBackends {
    pub store: DynamoStore,
    pub keys: KmsKeys,
    #[cfg(feature = "s3")]
    pub blobs: S3Blobs,
    #[cfg(feature = "sqs")]
    pub queue: SqsQueue,
    pub provisioned: Provisioned,
}

impl AwsBackends {
    /// Builds the clients from `config`, provisions (or resolves) the resources and returns the
    /// adapters.
    pub async fn connect(
        config: &SdkConfig,
        settings: &AwsSettings,
    ) -> Result<Self, ProvisionError> {
        let clients = AwsClients::new(config, settings.s3_force_path_style);
        let provisioned = provision::provision(&clients, settings).await?;
        Ok(Self {
            store: DynamoStore::new(clients.dynamodb, settings.table.clone()),
            keys: KmsKeys::new(clients.kms, provisioned.kms_key_id.clone()),
            #[cfg(feature = "s3")]
            blobs: S3Blobs::new(clients.s3, settings.bucket.clone()),
            #[cfg(feature = "sqs")]
            queue: SqsQueue::new(clients.sqs, provisioned.queue_url.clone()),
            provisioned,
        })
    }
}
