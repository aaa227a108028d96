//! The services container: every adapter and service a handler may need, built once per process
//! (a Lambda's init, or the local host's start) and shared by reference.

use std::sync::Arc;

use mailroom_core::crypto::Sealer;
use mailroom_core::ports::{BlobStore, ItemStore, JobQueue, KeyService};
use mailroom_core::records::Repository;
use rustls::ClientConfig;
use secrecy::SecretString;

use crate::config::Config;
use crate::tls::TlsError;

/// Why the process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("API key: {0}")]
    ApiKey(#[from] crate::api_key::ApiKeyError),
    #[error("could not open the {backend} backend: {reason}")]
    Backend {
        backend: &'static str,
        reason: String,
    },
}

/// The adapters behind the ports, as chosen by the configuration.
pub struct Backends {
    pub store: Arc<dyn ItemStore>,
    pub keys: Arc<dyn KeyService>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn JobQueue>,
}

/// Everything the handlers use.
pub struct Services {
    pub config: Config,
    pub repo: Repository,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub api_key: SecretString,
    /// Client TLS configuration for IMAP, SMTP and HTTPS (honours `SSL_CERT_FILE`).
    pub tls: Arc<ClientConfig>,
    /// HTTPS client for token endpoints, built once.
    pub http: reqwest::Client,
    /// The OAuth connect flow (start and callback).
    pub oauth: mailroom_oauth::OAuthService,
    /// Valid access tokens for accounts (refreshed and persisted as needed); sync and send use it.
    pub tokens: Arc<dyn mailroom_core::ports::TokenSource>,
}

/// The receiving end of the embedded backends' in-process job queue.
#[cfg(feature = "embedded")]
pub use mailroom_embedded::JobReceiver;

/// Built without the embedded backends there is no in-process queue: this type has no values.
#[cfg(not(feature = "embedded"))]
#[derive(Debug)]
pub enum JobReceiver {}

/// A started process: its services, and the in-process job queue's receiver when the embedded
/// backends are in use (the local host drains it).
pub struct Started {
    pub services: Arc<Services>,
    pub jobs: Option<JobReceiver>,
}

/// What a process serves, which decides whether it needs the API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serves HTTP routes: the API key is required (in Lambda) or generated (locally).
    Http,
    /// Runs scheduled or queued work only and never checks an API key.
    Background,
}

impl Services {
    /// Everything a process does before serving: the TLS provider, logging, configuration,
    /// backends and the API key. Lambda `main`s and the local host call this first.
    pub async fn start(role: Role) -> Result<Started, StartError> {
        crate::tls::install_crypto_provider();
        let config = Config::from_env()?;
        crate::logging::init(config.in_lambda);
        let opened = crate::backends::open(&config).await?;
        let api_key = match config.api_key.clone() {
            Some(key) => key,
            // Nothing checks it in a background process; an unguessable value keeps the type simple.
            None if role == Role::Background => SecretString::from(format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            )),
            None if config.in_lambda => {
                return Err(crate::config::ConfigError::Missing {
                    name: "MAILROOM_API_KEY",
                    when: "running in AWS Lambda",
                }
                .into());
            }
            None => {
                let (key, created) = crate::api_key::load_or_create(&config.data_dir)?;
                let path = config.data_dir.join(crate::api_key::KEY_FILE);
                if created {
                    use secrecy::ExposeSecret;
                    // Shown once, on the terminal of the person who started the local host; never logged.
                    eprintln!(
                        "A new API key was generated and saved in {}:\n\n    {}\n",
                        path.display(),
                        key.expose_secret()
                    );
                } else {
                    tracing::info!(path = %path.display(), "using the API key saved in the data directory");
                }
                key
            }
        };
        let services = Self::from_parts(config, opened.backends, api_key)?;
        Ok(Started {
            services: Arc::new(services),
            jobs: opened.jobs,
        })
    }

    /// Assembles the services from already-opened backends.
    pub fn from_parts(
        config: Config,
        backends: Backends,
        api_key: SecretString,
    ) -> Result<Self, StartError> {
        let tls = crate::tls::client_config()?;
        let http = crate::tls::http_client(&tls)?;
        let sealer = Arc::new(Sealer::new(backends.keys, config.data_key_cache));
        let repo = Repository::new(backends.store, sealer);
        let oauth = mailroom_oauth::OAuthService::new(
            repo.clone(),
            http.clone(),
            mailroom_oauth::OAuthConfig {
                public_url: config.public_url.as_str().trim_end_matches('/').to_owned(),
                return_to_allowlist: config.return_to_allowlist.clone(),
            },
        );
        let tokens = Arc::new(mailroom_oauth::OAuthTokenSource::new(
            repo.clone(),
            http.clone(),
        ));
        Ok(Self {
            repo,
            oauth,
            tokens,
            blobs: backends.blobs,
            queue: backends.queue,
            api_key,
            tls,
            http,
            config,
        })
    }
}
