//! TLS: one crypto provider (aws-lc-rs) for the whole process, and one client configuration whose
//! trust store is the system's roots, or the file named by `SSL_CERT_FILE` when it is set. The
//! roots are read on the first handshake, not at start: reading and parsing them is most of a
//! function's init otherwise, and the API functions rarely open IMAP, SMTP or token connections.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

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

/// Builds the client TLS configuration shared by IMAP, SMTP and HTTPS clients. The trusted roots
/// are loaded on the first certificate check ([`LazyRoots`]); a process without any fails that
/// handshake with [`TlsError::NoRoots`]'s message.
pub fn client_config() -> Result<Arc<ClientConfig>, TlsError> {
    install_crypto_provider();
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = Arc::new(LazyRoots {
        provider,
        verifier: OnceLock::new(),
    });
    let config = ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The system's roots (or `SSL_CERT_FILE`'s).
fn load_roots() -> Result<RootCertStore, TlsError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let reasons: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        return Err(TlsError::NoRoots(reasons.join("; ")));
    }
    tracing::debug!(roots = added, "loaded trusted root certificates");
    Ok(roots)
}

/// rustls' standard WebPKI verifier, built from the roots on first use (once per process);
/// every check is delegated to it, so verification is exactly the default one.
#[derive(Debug)]
struct LazyRoots {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
}

impl LazyRoots {
    fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                let roots = load_roots().map_err(|e| e.to_string())?;
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
                    .map_err(|e| format!("cannot build the certificate verifier: {e}"))
            })
            .as_ref()
            .map_err(|e| rustls::Error::General(e.clone()))
    }
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    // Signature checks need no roots: the same functions the WebPKI verifier calls.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
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
