//! The pages over plain HTTP: login with the API key (cookie attributes, wrong key, forged
//! login), CSRF rejection on every kind of form (nothing changed), security headers, escaping
//! of hostile message fields, the sandboxed HTML body, the settings page's Microsoft details, and
//! the connect flow coming back to the accounts page.

mod pages_support;

use mailroom_tests::app::TestApp;
use mailroom_tests::oauth_server::{self, connect};
use pages_support::{Visitor, csrf, stored_account, stored_message};
use reqwest::StatusCode;

#[tokio::test]
async fn login_sets_a_strict_http_only_session_cookie_that_is_not_the_key() {
    let app = TestApp::spawn().await;
    let mut v = Visitor::new(&app);
    let r = v.get("/ui/accounts").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/ui/login");

    let login = v.get("/ui/login").await;
    assert_eq!(login.status, StatusCode::OK);
    let token = csrf(&login.body);
    // A wrong key: no session.
    let wrong = v
        .post(
            "/ui/login",
            &[("api_key", &"x".repeat(40)), ("csrf", &token)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!v.cookies.contains_key("mailroom_session"));
    // The right key without the login form's token (a forged login): refused.
    let token = csrf(&wrong.body);
    let forged = v
        .post(
            "/ui/login",
            &[("api_key", &app.api_key), ("csrf", "forged")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!v.cookies.contains_key("mailroom_session"));

    let ok = v
        .post("/ui/login", &[("api_key", &app.api_key), ("csrf", &token)])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let line = ok
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("mailroom_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    let session = v.cookies["mailroom_session"].clone();
    assert!(!session.contains(&app.api_key) && !line.contains(&app.api_key));
    assert_eq!(v.get("/ui/accounts").await.status, StatusCode::OK);

    // A tampered token is no session.
    let mut tampered = Visitor::new(&app);
    tampered
        .cookies
        .insert("mailroom_session".into(), format!("9{session}"));
    assert_eq!(
        tampered.get("/ui/settings").await.status,
        StatusCode::SEE_OTHER
    );

    // Logging out clears the cookie.
    let token = v.csrf().await;
    let out = v.post("/ui/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!v.cookies.contains_key("mailroom_session"));
    assert_eq!(v.get("/ui/accounts").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_page_carries_a_strict_csp_and_no_framing() {
    let app = TestApp::spawn().await;
    let mut v = Visitor::login(&app).await;
    for path in ["/ui/login", "/ui/accounts", "/ui/settings"] {
        let r = v.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let csp = r.header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(r.header("x-frame-options"), "DENY", "{path}");
        assert_eq!(r.header("referrer-policy"), "no-referrer", "{path}");
        assert!(r.header("content-type").starts_with("text/html"));
        assert!(!r.body.contains("<script"), "{path} has no script");
        assert!(!r.body.contains(" style=\""), "{path} has no inline style");
    }
}

fn provider_form<'a>(id: &'a str, csrf: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("id", id),
        ("kind", "microsoft"),
        ("client_id", "11111111-2222-3333-4444-555555555555"),
        ("client_secret", "s3cret-value"),
        ("tenant", "contoso.onmicrosoft.com"),
        ("cloud", "us-gov"),
    ]
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_change_nothing() {
    let app = TestApp::spawn().await;
    let mut v = Visitor::login(&app).await;
    let token = v.csrf().await;
    let repo = &app.services.repo;

    // Settings: a wrong token, no token, another session's token, a cross-site post.
    let mut other = Visitor::login(&app).await;
    let other_token = other.csrf().await;
    assert_ne!(other_token, token, "tokens are bound to their session");
    for bad in ["", "forged", other_token.as_str()] {
        let r = v.post("/ui/settings", &provider_form("ms", bad)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "token {bad:?}");
    }
    let cross = v
        .post_with(
            "/ui/settings",
            &provider_form("ms", &token),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(repo.get_provider("ms").await.unwrap().is_none());

    // The right token stores it.
    let r = v.post("/ui/settings", &provider_form("ms", &token)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let stored = repo.get_provider("ms").await.unwrap().expect("stored");
    assert_eq!(stored.tenant.as_deref(), Some("contoso.onmicrosoft.com"));

    // Delete and disconnect need it too.
    let r = v
        .post("/ui/settings/ms/delete", &[("csrf", "forged")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(repo.get_provider("ms").await.unwrap().is_some());
    let account = stored_account(&app, "someone@example.test").await;
    let path = format!("/ui/accounts/{}/delete", account.id);
    assert_eq!(v.post(&path, &[]).await.status, StatusCode::FORBIDDEN);
    assert!(repo.get_account(&account.id).await.unwrap().is_some());
    assert_eq!(
        v.post(&path, &[("csrf", &token)]).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(repo.get_account(&account.id).await.unwrap().is_none());

    // The compose form (multipart) as well: nothing is claimed or sent.
    let account = stored_account(&app, "sender@example.test").await;
    let boundary = "XyZboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nforged\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk1\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\nx@example.test\r\n--{boundary}--\r\n"
    );
    let r = v
        .client
        .post(format!("{}/ui/accounts/{}/send", v.base, account.id))
        .header(
            "cookie",
            format!("mailroom_session={}", v.cookies["mailroom_session"]),
        )
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(repo.get_send(&account.id, "k1").await.unwrap().is_none());

    // Without a session at all, a post is refused before anything runs.
    let mut anonymous = Visitor::new(&app);
    let r = anonymous
        .post("/ui/settings", &provider_form("ms2", &token))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(repo.get_provider("ms2").await.unwrap().is_none());
}

#[tokio::test]
async fn the_settings_page_shows_what_to_register_for_microsoft() {
    let app = TestApp::spawn().await;
    let mut v = Visitor::login(&app).await;
    let token = v.csrf().await;
    v.post("/ui/settings", &provider_form("ms", &token)).await;
    let page = v.get("/ui/settings").await;
    let redirect = format!("{}/v1/oauth/ms/callback", app.base_url);
    assert!(page.body.contains(&redirect), "the redirect URI is shown");
    for permission in [
        "email",
        "offline_access",
        "IMAP.AccessAsUser.All",
        "SMTP.Send",
        "User.Read",
    ] {
        assert!(
            page.body.contains(&format!("<code>{permission}</code>")),
            "{permission}"
        );
    }
    let consent = format!(
        "https://login.microsoftonline.us/contoso.onmicrosoft.com/adminconsent?client_id=11111111-2222-3333-4444-555555555555&amp;redirect_uri={}",
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    assert!(
        page.body.contains(&consent),
        "admin consent link in {}",
        page.body
    );
    assert!(
        !page.body.contains("s3cret-value"),
        "the secret is never shown"
    );
    // A bad save re-shows the form with the field errors and stores nothing.
    let r = v
        .post(
            "/ui/settings",
            &[
                ("csrf", &token),
                ("id", "bad"),
                ("kind", "oauth2"),
                ("client_id", "c"),
                ("client_secret", "s3cret-2"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("authorize_url"), "{}", r.body);
    assert!(!r.body.contains("s3cret-2"));
    assert!(
        app.services
            .repo
            .get_provider("bad")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn hostile_message_fields_are_escaped_and_html_bodies_are_sandboxed() {
    let app = TestApp::spawn().await;
    let mut v = Visitor::login(&app).await;
    let account = stored_account(&app, "victim@example.test").await;
    let hostile_from = "\"<img src=x onerror=alert(1)>\" <evil@example.test>";
    let hostile_subject = "<script>alert('subject')</script> & \"quotes\"";
    let raw = "From: evil@example.test\r\nTo: victim@example.test\r\nSubject: hi\r\n\
               MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
               <p>Hello</p><script>alert('body')</script><img src=\"https://tracker.example/p.gif\">\r\n";
    let id = stored_message(
        &app,
        &account,
        7,
        hostile_from,
        hostile_subject,
        raw.as_bytes(),
    )
    .await;

    let list = v
        .get(&format!("/ui/accounts/{}/messages", account.id))
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let view = v
        .get(&format!("/ui/accounts/{}/messages/{id}", account.id))
        .await;
    assert_eq!(view.status, StatusCode::OK);
    for page in [&list.body, &view.body] {
        assert!(!page.contains("<script>alert"), "raw script in {page}");
        assert!(!page.contains("<img src=x"), "raw img in {page}");
        assert!(page.contains(
            "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
        ));
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }
    // The HTML body is not inline: a sandboxed frame (no allow-scripts) loads it from its route.
    assert!(!view.body.contains("alert('body')"));
    let frame = format!(
        "<iframe class=\"body\" sandbox title=\"message body\" src=\"/ui/accounts/{}/messages/{id}/body\">",
        account.id
    );
    assert!(view.body.contains(&frame), "{}", view.body);
    let body = v
        .get(&format!("/ui/accounts/{}/messages/{id}/body", account.id))
        .await;
    assert_eq!(body.status, StatusCode::OK);
    let csp = body.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "img-src data:",
        "sandbox",
        "frame-ancestors 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(
        !csp.contains("script-src"),
        "no script source is allowed: {csp}"
    );
    // Without a session the body is not served.
    let mut anonymous = Visitor::new(&app);
    let r = anonymous
        .get(&format!("/ui/accounts/{}/messages/{id}/body", account.id))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn connect_runs_the_oauth_flow_and_comes_back_to_the_accounts_page() {
    let oauth = oauth_server::spawn().await;
    // Only the test origin is configured: the host's own origin is allowed by default.
    let app = TestApp::spawn().await;
    connect::put_provider(&app, "test", &connect::provider_settings(&oauth, 993, 587)).await;
    let mut v = Visitor::login(&app).await;
    let token = v.csrf().await;
    let start = v
        .post(
            "/ui/accounts/connect",
            &[
                ("csrf", &token),
                ("provider_id", "test"),
                ("login_hint", "pat@example.test"),
            ],
        )
        .await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let authorize = start.header("location");
    assert!(authorize.starts_with(oauth.url()), "{authorize}");
    let callback = connect::authorize(&app, &authorize).await;
    let back = v.get(&callback).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    let location = back.header("location");
    assert!(
        location.starts_with(&format!("{}/ui/accounts?", app.base_url)),
        "{location}"
    );
    let page = v.get(&location).await;
    assert!(page.body.contains("Mailbox connected"), "{}", page.body);
    assert!(page.body.contains("pat@example.test"));
    let (accounts, _) = app
        .services
        .repo
        .list_accounts(None, None, 10)
        .await
        .unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].email, "pat@example.test");
    assert_eq!(accounts[0].owner, "local");
}
