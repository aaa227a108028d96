//! Opens the adapters a contract test runs against: embedded ones in a temporary directory, or
//! AWS ones on the moto server named by `MAILROOM_TEST_AWS_ENDPOINT`, on freshly provisioned
//! resources with names unique to the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use mailroom_aws::{AwsBackends, AwsClients, AwsSettings};
use mailroom_core::ports::{DataKey, ItemStore, KeyContext, KeyError, KeyService};
use mailroom_embedded::{KeyFile, RedbStore};
use tempfile::TempDir;
use zeroize::Zeroizing;

/// The moto endpoint, or a panic that says how to start it.
pub fn moto_endpoint() -> String {
    std::env::var("MAILROOM_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "MAILROOM_TEST_AWS_ENDPOINT is not set: run tests/run, or `tests/servers/moto.sh start; \
             source tests/.state/env` before cargo test"
        )
    })
}

/// SDK configuration for moto: its endpoint, dummy credentials, us-east-1.
pub async fn moto_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

/// The SDK's own S3 client on moto (path-style): an independent view of what the bucket holds,
/// next to Mailroom's S3 client (which only the adapters use).
pub fn sdk_s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// A name no other test (or test run) uses: lower-case, valid for tables, buckets and queues.
pub fn unique_name(purpose: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "mr-{purpose}-{}-{:x}-{}",
        std::process::id(),
        nanos % (1 << 40),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The AWS adapters on moto, on new resources provisioned by our own provisioning code.
pub struct Moto {
    pub config: SdkConfig,
    pub clients: AwsClients,
    pub settings: AwsSettings,
    pub backends: AwsBackends,
}

pub async fn moto(purpose: &str) -> Moto {
    let config = moto_sdk_config().await;
    let name = unique_name(purpose);
    let settings = AwsSettings {
        table: name.clone(),
        bucket: name.clone(),
        queue: name,
        dead_letter_queue: true,
        kms_key_id: None,
        auto_create: true,
        s3_force_path_style: true,
    };
    let backends = AwsBackends::connect(&config, &settings)
        .await
        .expect("provision the AWS resources on moto");
    Moto {
        clients: AwsClients::new(&config, true),
        config,
        settings,
        backends,
    }
}

/// A redb store in a temporary directory (removed when dropped).
pub struct TempRedb {
    pub store: Arc<dyn ItemStore>,
    pub path: std::path::PathBuf,
    pub dir: TempDir,
}

pub fn redb() -> TempRedb {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("items.redb");
    let store = RedbStore::open(&path).expect("open the redb store");
    TempRedb {
        store: Arc::new(store),
        path,
        dir,
    }
}

/// A key file in a new temporary directory.
pub fn key_file() -> (Arc<dyn KeyService>, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let keys = KeyFile::open_or_create(dir.path()).expect("create the key file");
    (Arc::new(keys), dir)
}

/// Counts the calls that reach the wrapped key service.
pub struct CountingKeys {
    inner: Arc<dyn KeyService>,
    generated: AtomicUsize,
    unwrapped: AtomicUsize,
}

impl CountingKeys {
    pub fn new(inner: Arc<dyn KeyService>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            generated: AtomicUsize::new(0),
            unwrapped: AtomicUsize::new(0),
        })
    }

    pub fn generated(&self) -> usize {
        self.generated.load(Ordering::SeqCst)
    }

    pub fn unwrapped(&self) -> usize {
        self.unwrapped.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeyService for CountingKeys {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        self.generated.fetch_add(1, Ordering::SeqCst);
        self.inner.generate_data_key(context).await
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.unwrapped.fetch_add(1, Ordering::SeqCst);
        self.inner.unwrap_data_key(wrapped, context).await
    }
}
