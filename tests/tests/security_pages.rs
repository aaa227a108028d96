//! The HTML pages under hostile data: markup in an account's address, owner and last error, in
//! a message's subject, sender and snippet, and a script in a message's HTML body. Every page
//! escapes what it shows and carries a strict Content-Security-Policy (no script at all); the
//! message's own HTML is served sandboxed, with nothing allowed to run or load.

use mailroom_core::SecretString;
use mailroom_core::domain::{Account, AccountStatus, MessageMeta, Tokens};
use mailroom_core::records::MessageKey;
use mailroom_core::time::now_unix;
use mailroom_tests::app::TestApp;
use mailroom_tests::oauth_server;
use mailroom_tests::oauth_server::connect::{provider_settings, put_provider};
use mailroom_web::{Access, specs};

const MARKUP: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "\"><svg onload=alert(3)>",
];

/// Logs in through the login form, as a browser would: the session cookie.
async fn login(app: &TestApp) -> String {
    let form = app.client().get(app.url("/ui/login")).send().await.unwrap();
    let login_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("mailroom_login="))
        .expect("the login form sets its cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let html = form.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login form carries a CSRF token")
        .to_owned();
    let response = app
        .client()
        .post(app.url("/ui/login"))
        .header("cookie", login_cookie)
        .form(&[("api_key", app.api_key.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "logged in");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("mailroom_session=") && !c.starts_with("mailroom_session=;"))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_escape_hostile_data_and_forbid_scripts() {
    let pages: Vec<_> = specs()
        .into_iter()
        .filter(|s| s.path.starts_with("/ui"))
        .collect();
    assert!(!pages.is_empty(), "the routing table has the HTML pages");
    let app = TestApp::spawn().await;
    let oauth = oauth_server::spawn().await;
    put_provider(&app, "test", &provider_settings(&oauth, 993, 587)).await;
    let now = now_unix();
    let account = Account {
        id: "acc_hostile".into(),
        owner: MARKUP[0].into(),
        provider_id: "test".into(),
        email: format!("{}@example.test", MARKUP[1]),
        identity: "hostile".into(),
        status: AccountStatus::Degraded,
        status_reason: Some(MARKUP[2].into()),
        tokens: Tokens {
            access_token: SecretString::from("a".repeat(40)),
            refresh_token: SecretString::from("r".repeat(40)),
            access_expires_at: now + 3600,
        },
        granted_scopes: vec![MARKUP[0].into()],
        created_at: now,
        updated_at: now,
        next_sync_at: now + 3600,
        last_sync_at: Some(now),
        last_error: Some(MARKUP[0].into()),
        failure_count: 3,
        extra: Default::default(),
        version: 1,
    };
    app.services.repo.create_account(&account).await.unwrap();
    let key = MessageKey::new("INBOX", 1, 1);
    let raw = format!(
        "From: \"{m1}\" <evil@example.test>\r\nTo: a@example.test\r\nSubject: {m0}\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{m2}\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p>{m0}<form action=https://evil.test><input name=p></form>\r\n--b--\r\n",
        m0 = MARKUP[0],
        m1 = MARKUP[1],
        m2 = MARKUP[2]
    );
    let meta = MessageMeta {
        id: key.message_id(),
        account_id: account.id.clone(),
        folder: "INBOX".into(),
        uid_validity: 1,
        uid: 1,
        from: vec![format!("{} <evil@example.test>", MARKUP[1])],
        to: vec!["a@example.test".into()],
        subject: Some(MARKUP[0].into()),
        snippet: Some(MARKUP[2].into()),
        attachments: vec![mailroom_core::domain::AttachmentInfo {
            filename: Some(MARKUP[1].into()),
            content_type: "text/html".into(),
            size: 1,
        }],
        blob_key: key.blob_key(&account.id),
        size: raw.len() as u64,
        parsed: true,
        stored_at: now,
        ..Default::default()
    };
    app.services
        .repo
        .put_messages(std::slice::from_ref(&meta))
        .await
        .unwrap();
    app.services
        .blobs
        .put(&meta.blob_key, raw.into_bytes().into())
        .await
        .unwrap();

    let cookie = login(&app).await;
    let mut checked = 0;
    for spec in pages.iter().filter(|s| s.method == "GET") {
        let path = spec.path.replace("{message_id}", &meta.id).replace(
            "{id}",
            if spec.path.contains("/accounts/") {
                &account.id
            } else {
                "test"
            },
        );
        let response = app
            .client()
            .get(app.url(&path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        let csp = headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path}: no Content-Security-Policy"))
            .to_owned();
        assert!(
            csp.contains("script-src 'none'")
                || (csp.contains("default-src 'none'") && !csp.contains("script-src")),
            "{path}: scripts are not forbidden: {csp}"
        );
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(
            headers.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{path}"
        );
        if path.ends_with("/body") {
            assert!(
                csp.contains("sandbox"),
                "{path}: the message's HTML runs sandboxed: {csp}"
            );
            assert!(csp.contains("form-action 'none'"), "{path}: {csp}");
            checked += 1;
            continue;
        }
        if spec.access == Access::Public && !path.starts_with("/ui/login") {
            continue;
        }
        for m in MARKUP {
            assert!(
                !body.contains(m),
                "{path} ({status}) shows markup unescaped: {m}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "pages checked: {checked}");
    // The pages that show the hostile values show them escaped.
    let list = app
        .client()
        .get(app.url("/ui/accounts"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let list = list.text().await.unwrap();
    assert!(
        list.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "the address is shown, escaped"
    );
}
