//! The bad-input harness: an app whose store is journaled (so the whole store can be compared
//! before and after each case), with one provider, one connected account, one stored message,
//! one stored send and a spent callback URL to replay.

mod cases;

use std::sync::{Arc, OnceLock};

use mailroom_core::domain::{MessageMeta, OAuthState, SendRecord, SendStatus};
use mailroom_core::records::MessageKey;
use mailroom_core::time::now_unix;
use mailroom_core::{ExposeSecret, SecretString};
use mailroom_tests::app::TestApp;
use mailroom_tests::faults::JournalStore;
use mailroom_tests::oauth_server::connect::{
    authorize, deliver, location, provider_settings, put_provider, query, return_to, start,
};
use mailroom_tests::oauth_server::{self, TestOAuthServer};
use serde_json::Value;

pub use cases::cases;

/// What a case must get back.
#[derive(Debug, Clone)]
pub enum Expect {
    /// problem+json with this status and `type` kind.
    Problem(u16, &'static str),
    /// An HTML page with this status.
    Page(u16),
    /// A `303 See Other` to this path.
    SeeOther(&'static str),
    /// The callback's redirect to the allow-listed return_to with this `error`.
    Redirect(&'static str),
    /// Just this status (public routes that ignore what they do not use).
    Status(u16),
}

/// How a case authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Key,
    None,
    Wrong,
    Basic,
}

/// What a case sends as its body.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

/// One row of the table.
pub struct Case {
    pub name: String,
    pub method: reqwest::Method,
    /// The route's path as the routing table writes it.
    pub route: &'static str,
    /// The path and query actually requested.
    pub path: String,
    pub auth: Auth,
    pub body: Body,
    pub headers: Vec<(&'static str, String)>,
    pub expect: Expect,
    /// A state stored fresh just before the case (the callback cases that spend one).
    pub fresh_state: Option<String>,
    /// The state the case may spend (the only store change allowed).
    pub consumes: Option<String>,
}

impl Case {
    pub fn new(method: &str, route: &'static str, path: impl Into<String>, expect: Expect) -> Self {
        Self {
            name: String::new(),
            method: method.parse().expect("an HTTP method"),
            route,
            path: path.into(),
            auth: Auth::Key,
            body: Body::None,
            headers: vec![],
            expect,
            fresh_state: None,
            consumes: None,
        }
    }

    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    pub fn raw(mut self, content_type: &'static str, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Raw(content_type, bytes.into());
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Stores `state` fresh before the case and allows the case to spend it.
    pub fn spending(mut self, state: &str) -> Self {
        self.fresh_state = Some(state.to_owned());
        self.consumes = Some(state.to_owned());
        self
    }

    pub fn request(&self, h: &Harness) -> reqwest::RequestBuilder {
        let mut r = h
            .app
            .client()
            .request(self.method.clone(), h.app.url(&self.path));
        r = match self.auth {
            Auth::Key => r.bearer_auth(&h.app.api_key),
            Auth::None => r,
            Auth::Wrong => r.bearer_auth(format!("{}x", h.app.api_key)),
            Auth::Basic => r.basic_auth("admin", Some(&h.app.api_key)),
        };
        for (name, value) in &self.headers {
            r = r.header(*name, value);
        }
        match &self.body {
            Body::None => r,
            Body::Json(v) => r.json(v),
            Body::Raw(ct, bytes) => r.header("content-type", *ct).body(bytes.clone()),
        }
    }
}

/// The app under test and what is stored in it.
pub struct Harness {
    pub app: TestApp,
    pub journal: JournalStore,
    pub oauth: TestOAuthServer,
    pub account_id: String,
    pub message_id: String,
    pub spent_callback: String,
    tokens: Vec<String>,
}

impl Harness {
    pub async fn start() -> Harness {
        let journal: Arc<OnceLock<JournalStore>> = Arc::default();
        let slot = journal.clone();
        let app = TestApp::spawn_wrapped(
            &[("MAILROOM_SEND_MAX_ATTACHMENT_BYTES", "1024")],
            move |mut backends| {
                let j = JournalStore::new(backends.store);
                backends.store = Arc::new(j.clone());
                let _ = slot.set(j);
                backends
            },
        )
        .await;
        let journal = journal.get().expect("the journal was installed").clone();
        let oauth = oauth_server::spawn().await;
        put_provider(&app, "test", &provider_settings(&oauth, 993, 587)).await;
        put_provider(&app, "other", &provider_settings(&oauth, 993, 587)).await;

        let callback = authorize(
            &app,
            &start(&app, "test", "owner-1", "eve@example.test").await,
        )
        .await;
        let response = deliver(&app, &callback).await;
        let back = query(&location(&response));
        let account_id = back["account_id"].clone();
        let account = app
            .services
            .repo
            .get_account(&account_id)
            .await
            .unwrap()
            .unwrap();

        let key = MessageKey::new("INBOX", 7, 42);
        let meta = MessageMeta {
            id: key.message_id(),
            account_id: account_id.clone(),
            folder: "INBOX".into(),
            uid_validity: 7,
            uid: 42,
            blob_key: key.blob_key(&account_id),
            message_id_header: Some("m1@example.test".into()),
            size: 5,
            ..Default::default()
        };
        app.services
            .repo
            .put_messages(std::slice::from_ref(&meta))
            .await
            .unwrap();
        app.services
            .blobs
            .put(&meta.blob_key, b"hello".to_vec().into())
            .await
            .unwrap();
        let now = now_unix();
        let record = SendRecord {
            account_id: account_id.clone(),
            idempotency_key: "sent-key".into(),
            request_hash: "0".repeat(64),
            status: SendStatus::Sent,
            message_id: Some("<x@example.test>".into()),
            accepted: vec!["bob@example.test".into()],
            rejected: vec![],
            error: None,
            created_at: now,
            updated_at: now,
        };
        app.services.repo.claim_send(&record).await.unwrap();
        let mut h = Harness {
            tokens: vec![
                account.tokens.access_token.expose_secret().to_owned(),
                account.tokens.refresh_token.expose_secret().to_owned(),
            ],
            app,
            journal,
            oauth,
            account_id,
            message_id: key.message_id(),
            spent_callback: callback,
        };
        h.put_state_with("expired-state", "test", now - 700, now - 100)
            .await;
        // The connect queued its preflight; the cases start from an empty queue.
        if let Some(jobs) = h.app.jobs.as_mut() {
            while let Ok(Some(_)) =
                tokio::time::timeout(std::time::Duration::from_millis(20), jobs.recv()).await
            {
            }
        }
        h
    }

    async fn put_state_with(&self, state: &str, provider: &str, created: i64, expires: i64) {
        let record = OAuthState {
            state: state.to_owned(),
            provider_id: provider.to_owned(),
            owner: "owner-1".into(),
            return_to: Some(return_to()),
            login_hint: None,
            pkce_verifier: SecretString::from("v".repeat(43)),
            redirect_uri: self.app.url(&format!("/v1/oauth/{provider}/callback")),
            created_at: created,
            expires_at: expires,
        };
        self.app
            .services
            .repo
            .put_oauth_state(&record)
            .await
            .unwrap();
    }

    /// Stores a live state for provider `test`.
    pub async fn put_state(&self, state: &str) {
        let now = now_unix();
        self.put_state_with(state, "test", now, now + 600).await;
    }

    /// Values that must never appear in an answer.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = self.tokens.clone();
        out.push(self.app.api_key.clone());
        out.push(oauth_server::DEFAULT_CLIENT_SECRET.to_owned());
        out
    }
}
