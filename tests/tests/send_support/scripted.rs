//! A scripted SMTP server over implicit TLS, for the replies Dovecot cannot give (Microsoft's
//! `535 5.7.139`, 421, recipient refusals, an error challenge, a cut after the data).

use std::sync::{Arc, Mutex};

use mailroom_core::domain::{MailEndpoint, TlsMode};
use mailroom_tests::app::server_env;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the scripted SMTP server answers at each step.
#[derive(Debug, Clone)]
pub struct Script {
    /// Sent as `334 <challenge>` after the client's XOAUTH2 response (Gmail's error challenge);
    /// the client must answer with an empty line before the `auth` reply.
    pub auth_challenge: Option<&'static str>,
    /// Answer `AUTH XOAUTH2 <response>` on one line with 501 (only the two-step form works).
    pub refuse_initial_response: bool,
    pub auth: &'static str,
    pub mail: &'static str,
    pub rcpt: &'static str,
    /// `None`: close the connection after the data instead of answering.
    pub data_end: Option<&'static str>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            auth_challenge: None,
            refuse_initial_response: false,
            auth: "235 2.7.0 Accepted",
            mail: "250 2.1.0 Ok",
            rcpt: "250 2.1.5 Ok",
            data_end: Some("250 2.0.0 Queued"),
        }
    }
}

/// A scripted SMTP server over implicit TLS (the test CA's localhost certificate); it records
/// every command line it receives, with the AUTH payload masked.
pub struct ScriptedSmtp {
    pub endpoint: MailEndpoint,
    pub commands: Arc<Mutex<Vec<String>>>,
    /// How many times a message's data was received in full.
    pub messages: Arc<Mutex<usize>>,
}

impl ScriptedSmtp {
    pub async fn start(script: Script) -> Self {
        let dir = server_env("MAILROOM_TEST_DOVECOT_DIR");
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(format!("{dir}/tls/server.crt"))
                .expect("server cert")
                .map(|c| c.expect("cert"))
                .collect();
        let key =
            PrivateKeyDer::from_pem_file(format!("{dir}/tls/server.key")).expect("server key");
        mailroom_runtime::tls::install_crypto_provider();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server TLS config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let messages = Arc::new(Mutex::new(0usize));
        let (log, count) = (commands.clone(), messages.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, script, log, count) =
                    (acceptor.clone(), script.clone(), log.clone(), count.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = session(tls, script, log, count).await;
                    }
                });
            }
        });
        ScriptedSmtp {
            endpoint: MailEndpoint {
                host: "localhost".into(),
                port,
                tls: TlsMode::Implicit,
            },
            commands,
            messages,
        }
    }

    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().expect("log").clone()
    }

    pub fn saw(&self, verb: &str) -> bool {
        self.commands()
            .iter()
            .any(|c| c.to_ascii_uppercase().starts_with(verb))
    }
}

async fn session(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    script: Script,
    log: Arc<Mutex<Vec<String>>>,
    count: Arc<Mutex<usize>>,
) -> std::io::Result<()> {
    let mut io = BufReader::new(tls);
    io.get_mut().write_all(b"220 scripted ESMTP\r\n").await?;
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_owned();
        let upper = line.to_ascii_uppercase();
        let logged = if upper.trim() == "AUTH XOAUTH2" {
            "AUTH XOAUTH2".to_owned()
        } else if upper.starts_with("AUTH") {
            "AUTH XOAUTH2 ***".to_owned()
        } else {
            line.clone()
        };
        log.lock().expect("log").push(logged);
        let reply: String = if upper.starts_with("EHLO") {
            "250-scripted\r\n250-AUTH XOAUTH2\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES".into()
        } else if upper.starts_with("AUTH")
            && script.refuse_initial_response
            && upper.trim() != "AUTH XOAUTH2"
        {
            "501 5.5.4 Initial response not accepted".into()
        } else if upper.starts_with("AUTH") {
            if upper.trim() == "AUTH XOAUTH2" {
                // The two-step form: ask for the response, then read it.
                io.get_mut().write_all(b"334 \r\n").await?;
                let mut response = String::new();
                io.read_line(&mut response).await?;
            }
            if let Some(challenge) = script.auth_challenge {
                io.get_mut()
                    .write_all(format!("334 {challenge}\r\n").as_bytes())
                    .await?;
                let mut answer = String::new();
                io.read_line(&mut answer).await?;
                log.lock()
                    .expect("log")
                    .push(format!("challenge answer {:?}", answer));
            }
            script.auth.into()
        } else if upper.starts_with("MAIL") {
            script.mail.into()
        } else if upper.starts_with("RCPT") {
            script.rcpt.into()
        } else if upper.starts_with("DATA") {
            io.get_mut().write_all(b"354 Go ahead\r\n").await?;
            loop {
                let mut data = String::new();
                if io.read_line(&mut data).await? == 0 {
                    return Ok(());
                }
                if data == ".\r\n" {
                    break;
                }
            }
            *count.lock().expect("count") += 1;
            match script.data_end {
                Some(reply) => reply.into(),
                // The connection breaks after the data, before any reply.
                None => return Ok(()),
            }
        } else if upper.starts_with("QUIT") {
            io.get_mut().write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "250 2.0.0 Ok".into()
        };
        io.get_mut()
            .write_all(format!("{reply}\r\n").as_bytes())
            .await?;
    }
}
