//! TLS: one crypto provider (aws-lc-rs) for the whole process, and one client configuration whose
//! trust store is the system's roots, or the file named by `SSL_CERT_FILE` when it is set.

use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, RootCertStore};

/// What could not be set up for TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no trusted root certificates could be loaded (check SSL_CERT_FILE): {0}")]
    NoRoots(String),
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
}

/// Installs aws-lc-rs as the process-wide rustls provider. Call first thing in every `main`;
/// calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Builds the client TLS configuration shared by IMAP, SMTP and HTTPS clients.
pub fn client_config() -> Result<Arc<ClientConfig>, TlsError> {
    install_crypto_provider();
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let reasons: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        return Err(TlsError::NoRoots(reasons.join("; ")));
    }
    tracing::debug!(roots = added, "loaded trusted root certificates");
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The HTTPS client for token endpoints and other HTTP calls, built once per process.
pub fn http_client(tls: &ClientConfig) -> Result<reqwest::Client, TlsError> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls.clone())
        // Token endpoints must not follow redirects (a redirect could leak the client secret).
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("mailroom/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| TlsError::HttpClient(e.to_string()))
}
