//! The send path on the production store: DynamoDB and KMS (moto) behind the whole HTTP surface,
//! sending through the real Dovecot submission server. Exactly-once rests on DynamoDB's
//! conditional writes here: concurrent duplicates deliver once, a replay repeats the first result,
//! a reused key with another body is refused.

mod send_support;

use std::sync::Arc;

use mailroom_runtime::services::Backends;
use mailroom_runtime::{Config, Services};
use mailroom_tests::contract::backends::moto;
use secrecy::SecretString;
use send_support::{inbox_with, new_email, seed_account, trust_test_ca};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The HTTP surface on moto-backed services; returns its base URL, API key and services.
async fn app_on_moto() -> (String, String, Arc<Services>) {
    trust_test_ca();
    mailroom_runtime::tls::install_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let api_key = format!("send-dynamodb-{:032x}", rand::random::<u128>());
    let vars = [
        ("MAILROOM_STORE", "dynamodb".to_owned()),
        ("MAILROOM_AUTO_CREATE", "1".to_owned()),
        ("MAILROOM_API_KEY", api_key.clone()),
        ("MAILROOM_LISTEN", address.to_string()),
    ];
    let config = Config::from(&move |name: &str| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
    .expect("configuration");
    let m = moto("send").await;
    let backends = Backends {
        store: Arc::new(m.backends.store),
        keys: Arc::new(m.backends.keys),
        blobs: Arc::new(m.backends.blobs),
        queue: Arc::new(m.backends.queue),
    };
    let services = Arc::new(
        Services::from_parts(config, backends, SecretString::from(api_key.clone()))
            .expect("services"),
    );
    let router = mailroom_web::router(services.clone(), &mailroom_web::Function::ALL);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{address}"), api_key, services)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_on_dynamodb() {
    let (base, api_key, services) = app_on_moto().await;
    let (_, account_id) = seed_account(&services.repo, None, None).await;
    let client = reqwest::Client::new();
    let send = |key: &'static str, body: Value| {
        let (client, base, api_key, account_id) = (&client, &base, &api_key, &account_id);
        async move {
            client
                .post(format!("{base}/v1/accounts/{account_id}/send"))
                .bearer_auth(api_key)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let bob = new_email();
    let body = json!({"to": [bob], "subject": "on dynamodb", "text": "once"});
    let responses = futures::future::join_all((0..5).map(|_| send("ddb-key", body.clone()))).await;
    let fresh: Vec<&reqwest::Response> = responses
        .iter()
        .filter(|r| r.status() == 200 && !r.headers().contains_key("idempotent-replay"))
        .collect();
    assert_eq!(fresh.len(), 1, "exactly one request sends");
    for r in &responses {
        assert!(matches!(r.status().as_u16(), 200 | 409), "{}", r.status());
    }
    assert_eq!(inbox_with(&bob, 1).await.len(), 1);

    let replay = send("ddb-key", body.clone()).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replay"], "true");
    let replay: Value = replay.json().await.unwrap();
    let stored = services
        .repo
        .get_send(&account_id, "ddb-key")
        .await
        .unwrap()
        .expect("the record is in DynamoDB");
    assert_eq!(
        replay["message_id"].as_str(),
        stored.record.message_id.as_deref()
    );
    assert_eq!(stored.record.accepted, vec![bob.clone()]);

    let conflict = send("ddb-key", json!({"to": [bob], "text": "other"})).await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(inbox_with(&bob, 1).await.len(), 1);
}
