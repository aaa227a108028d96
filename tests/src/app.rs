//! Spawns the whole Mailroom HTTP surface (every function's routes, as the local host serves
//! them) on a free loopback port, with embedded backends in a temporary directory.

use std::collections::HashMap;
use std::sync::Arc;

use mailroom_runtime::backends;
use mailroom_runtime::{Config, Services};
use mailroom_web::Function;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running app; dropped, it stops serving and removes its data.
pub struct TestApp {
    pub base_url: String,
    pub api_key: String,
    pub services: Arc<Services>,
    /// The in-process queue's receiver: tests drive the worker themselves.
    pub jobs: Option<mailroom_embedded::JobReceiver>,
    pub data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

/// The return_to origin every test app allows.
pub const TEST_RETURN_ORIGIN: &str = "http://app.test";

impl TestApp {
    /// Starts an app with the default test configuration.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Starts an app; `vars` override or add configuration variables.
    pub async fn spawn_with(vars: &[(&str, &str)]) -> TestApp {
        Self::spawn_wrapped(vars, |backends| backends).await
    }

    /// Starts an app whose store counts its requests (`counting::CountingStore`), with the
    /// counters.
    pub async fn spawn_counting() -> (TestApp, Arc<crate::counting::Counters>) {
        let counters = Arc::new(crate::counting::Counters::default());
        let counted = counters.clone();
        let app = Self::spawn_wrapped(&[], move |mut backends| {
            backends.store = Arc::new(crate::counting::CountingStore {
                inner: backends.store,
                counters: counted,
            });
            backends
        })
        .await;
        (app, counters)
    }

    /// Starts an app whose opened backends first pass through `wrap` (fault-injecting or
    /// recording decorators around the store, keys, blobs or queue).
    pub async fn spawn_wrapped(
        vars: &[(&str, &str)],
        wrap: impl FnOnce(mailroom_runtime::services::Backends) -> mailroom_runtime::services::Backends,
    ) -> TestApp {
        mailroom_runtime::tls::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let data_dir = tempfile::tempdir().expect("temporary data dir");
        let api_key = format!("test-key-{}", hex(&rand::random::<[u8; 16]>()));
        let mut env: HashMap<String, String> = HashMap::from([
            (
                "MAILROOM_DATA_DIR".into(),
                data_dir.path().display().to_string(),
            ),
            ("MAILROOM_API_KEY".into(), api_key.clone()),
            ("MAILROOM_LISTEN".into(), address.to_string()),
            ("MAILROOM_PUBLIC_URL".into(), format!("http://{address}")),
            (
                "MAILROOM_RETURN_TO_ALLOWLIST".into(),
                TEST_RETURN_ORIGIN.into(),
            ),
        ]);
        for (name, value) in vars {
            env.insert((*name).into(), (*value).into());
        }
        let config =
            Config::from(&move |name: &str| env.get(name).cloned()).expect("test configuration");
        let opened = backends::open(&config).await.expect("open the backends");
        let services = Arc::new(
            Services::from_parts(
                config,
                wrap(opened.backends),
                SecretString::from(api_key.clone()),
            )
            .expect("services"),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let app = mailroom_web::router(services.clone(), &Function::ALL);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        TestApp {
            base_url: format!("http://{address}"),
            api_key,
            services,
            jobs: opened.jobs,
            data_dir,
            stop: Some(stop),
        }
    }

    /// An HTTP client that does not follow redirects (tests look at them).
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client")
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A request builder with the API key set.
    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client()
            .request(method, self.url(path))
            .bearer_auth(&self.api_key)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads an environment variable set by `tests/run`, or fails the test saying how to get it.
pub fn server_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through `tests/run`, which starts the test servers"
        )
    })
}
