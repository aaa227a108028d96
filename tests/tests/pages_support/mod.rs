//! Support for the page tests: a visitor that keeps the cookies the app sets (as a browser
//! would, by name), logs in with the API key and reads CSRF tokens out of forms; and stored
//! accounts and messages for the pages to show.

#![allow(dead_code)]

use std::collections::HashMap;

use mailroom_core::domain::{Account, AccountStatus, MessageMeta, Tokens};
use mailroom_core::records::MessageKey;
use mailroom_core::time::now_unix;
use mailroom_tests::app::TestApp;
use reqwest::StatusCode;
use secrecy::SecretString;

/// A browser-like client of one app: no redirects followed, cookies kept.
pub struct Visitor {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

/// A response read in full.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }

    /// Every `Set-Cookie` line.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

impl Visitor {
    pub fn new(app: &TestApp) -> Self {
        Visitor {
            base: app.base_url.clone(),
            client: app.client(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        for line in headers.get_all("set-cookie") {
            let line = line.to_str().expect("ASCII cookie");
            let pair = line.split(';').next().expect("a cookie pair");
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = response.text().await.expect("body");
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let response = self
            .client
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.read(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.post_with(path, form, &[]).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("POST");
        self.read(response).await
    }

    /// Logs in with the app's API key; panics unless a session starts.
    pub async fn login(app: &TestApp) -> Self {
        let mut v = Visitor::new(app);
        let page = v.get("/ui/login").await;
        let token = csrf(&page.body);
        let answer = v
            .post("/ui/login", &[("api_key", &app.api_key), ("csrf", &token)])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert!(
            v.cookies.contains_key("mailroom_session"),
            "a session cookie"
        );
        v
    }

    /// The CSRF token of the session, read from the accounts page.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/ui/accounts").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        csrf(&page.body)
    }
}

/// The first CSRF token in a page's forms.
pub fn csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    let end = html[start..].find('"').expect("end of the token") + start;
    html[start..end].to_owned()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

/// An active account stored directly (no mail server behind it).
pub async fn stored_account(app: &TestApp, email: &str) -> Account {
    let now = now_unix();
    let account = Account {
        id: unique("acct-"),
        owner: "pages-tests".into(),
        provider_id: "prov".into(),
        email: email.into(),
        identity: format!("test|{email}"),
        status: AccountStatus::Active,
        status_reason: None,
        tokens: Tokens {
            access_token: SecretString::from("a"),
            refresh_token: SecretString::from("r"),
            access_expires_at: now + 3600,
        },
        granted_scopes: vec![],
        created_at: now,
        updated_at: now,
        next_sync_at: now + 3600,
        last_sync_at: None,
        last_error: None,
        failure_count: 0,
        extra: Default::default(),
        version: 1,
    };
    app.services
        .repo
        .create_account(&account)
        .await
        .expect("create the account");
    account
}

/// Stores a message (metadata and raw source) in the account's INBOX; returns its id.
pub async fn stored_message(
    app: &TestApp,
    account: &Account,
    uid: u32,
    from: &str,
    subject: &str,
    raw: &[u8],
) -> String {
    let key = MessageKey::new("INBOX", 1, uid);
    let blob_key = key.blob_key(&account.id);
    app.services
        .blobs
        .put(&blob_key, bytes::Bytes::copy_from_slice(raw))
        .await
        .expect("store the raw message");
    let meta = MessageMeta {
        id: key.message_id(),
        account_id: account.id.clone(),
        folder: "INBOX".into(),
        uid_validity: 1,
        uid,
        from: vec![from.into()],
        to: vec![account.email.clone()],
        subject: Some(subject.into()),
        date: Some(now_unix() - 60 + i64::from(uid)),
        size: raw.len() as u64,
        snippet: Some(subject.into()),
        blob_key,
        parsed: true,
        stored_at: now_unix(),
        ..MessageMeta::default()
    };
    app.services
        .repo
        .put_messages(&[meta])
        .await
        .expect("store the message");
    key.message_id()
}
