//! A private moto server that checks SigV4: moto verifies signatures (recomputing them with
//! botocore's signer) once its "initial no-auth action count" is used up
//! (`INITIAL_NO_AUTH_ACTION_COUNT`, or `POST /moto-api/reset-auth`). The shared test moto keeps
//! authentication off, so this test starts its own: an IAM user with an access key and an
//! allow-all policy is created first, then authentication is switched on.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The server (stopped when dropped) and the IAM user's access key.
pub struct AuthMoto {
    pub url: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    child: Child,
}

impl Drop for AuthMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The text of the first `<tag>` in `xml`.
fn element(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = start + xml[start..].find("</").unwrap();
    xml[start..end].to_owned()
}

/// An IAM Query API call while authentication is still off (moto routes it by the scope of a
/// placeholder authorization header).
async fn iam(http: &reqwest::Client, url: &str, params: &[(&str, &str)]) -> String {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .append_pair("Version", "2010-05-08")
        .finish();
    let response = http
        .post(format!("{url}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "IAM {params:?}: {status} {text}");
    text
}

/// Starts moto, creates the user and its key, and turns signature checks on.
pub async fn start() -> AuthMoto {
    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python3 -m moto.server (tests/run installs moto[server])");
    let url = format!("http://127.0.0.1:{port}");
    let mut moto = AuthMoto {
        url: url.clone(),
        access_key_id: String::new(),
        secret_access_key: String::new(),
        child,
    };
    mailroom_runtime::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..150 {
        if http.get(format!("{url}/moto-api/")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(up, "the private moto server did not start");
    iam(
        &http,
        &url,
        &[("Action", "CreateUser"), ("UserName", "mailroom")],
    )
    .await;
    let policy =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    iam(
        &http,
        &url,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "mailroom"),
            ("PolicyName", "all"),
            ("PolicyDocument", policy),
        ],
    )
    .await;
    let key = iam(
        &http,
        &url,
        &[("Action", "CreateAccessKey"), ("UserName", "mailroom")],
    )
    .await;
    moto.access_key_id = element(&key, "AccessKeyId");
    moto.secret_access_key = element(&key, "SecretAccessKey");
    let reset = http
        .post(format!("{url}/moto-api/reset-auth"))
        .body("0")
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success());
    moto
}
