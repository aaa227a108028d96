//! Support for the browser tests: the local host itself (every route, the scheduler and the
//! worker loop on the in-process queue) on a free loopback port with embedded backends, trusting
//! the test CA, and the WebDriver client.

#![allow(dead_code)]

pub mod webdriver;

use std::collections::HashMap;
use std::sync::Arc;

use mailroom_runtime::{Config, Services, Started, backends};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running local host; dropped, it shuts down and its data directory is removed.
pub struct LocalHost {
    pub base_url: String,
    pub api_key: String,
    pub services: Arc<Services>,
    _data: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl LocalHost {
    /// Starts `mailroom_web::local::serve` as `mailroom-local` does, on 127.0.0.1.
    pub async fn start() -> LocalHost {
        mailroom_runtime::tls::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let data = tempfile::tempdir().expect("data dir");
        let api_key = format!("browser-key-{:032x}", rand::random::<u128>());
        let env: HashMap<String, String> = HashMap::from([
            (
                "MAILROOM_DATA_DIR".into(),
                data.path().join("data").display().to_string(),
            ),
            ("MAILROOM_API_KEY".into(), api_key.clone()),
            ("MAILROOM_LISTEN".into(), address.to_string()),
        ]);
        let config = Config::from(&move |name: &str| env.get(name).cloned()).expect("config");
        let opened = backends::open(&config).await.expect("backends");
        let services = Arc::new(
            Services::from_parts(config, opened.backends, SecretString::from(api_key.clone()))
                .expect("services"),
        );
        let started = Started {
            services: services.clone(),
            jobs: opened.jobs,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = mailroom_web::local::serve(listener, started, shutdown).await {
                panic!("the local host failed: {e}");
            }
        });
        LocalHost {
            base_url: format!("http://{address}"),
            api_key,
            services,
            _data: data,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for LocalHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
