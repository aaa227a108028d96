//! The pages in a real browser (headless Chromium through WebDriver) against the local host with
//! the test OAuth server, Dovecot IMAP and submission: log in, configure a provider, connect a
//! mailbox (the provider on another site, so the way back is a cross-site redirect), see the
//! preflight and synced mail, read a hostile HTML message safely, reply with an attachment, and
//! see the reply arrive (in the sender's own mailbox after a sync, and in the peer's INBOX).

mod browser_support;
#[path = "send_support/mod.rs"]
mod send_support;
#[path = "sync_support/mod.rs"]
mod sync_support;

use browser_support::LocalHost;
use browser_support::webdriver::Browser;
use mail_parser::MimeHeaders;
use mailroom_tests::app::server_env;

const TOKEN_SCOPES: &str = "openid profile email offline_access";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_connect_read_and_reply_in_a_real_browser() {
    send_support::trust_test_ca();
    let oauth = server_env("MAILROOM_TEST_OAUTH_URL");
    let imap = server_env("MAILROOM_TEST_IMAP_PORT");
    let smtp = server_env("MAILROOM_TEST_SMTP_PORT");
    let host = LocalHost::start().await;
    let browser = Browser::start().await;

    let user = format!("{}@example.test", sync_support::unique("page-user-"));
    let peer = format!("{}@example.test", sync_support::unique("page-peer-"));
    let subject = format!("Plans {}", sync_support::unique(""));
    // A "tracking pixel" server on loopback: the message view must never contact it.
    let pixel = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tracker = format!("http://{}", pixel.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = pixel.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let original = format!(
        "From: Peer <{peer}>\r\nTo: {user}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject_id}@example.test>\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nShall we meet on Friday?\r\n\
         --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Shall we meet on <b>Friday</b>?</p>\
         <script>parent.document.title='pwned'</script><img src=\"{tracker}/t.gif\">\r\n--b--\r\n",
        subject_id = subject.replace(' ', "-"),
    );
    sync_support::deliver(&user, &[original.into_bytes()]).await;

    // Log in with the API key.
    browser.goto(&host.url("/ui/accounts")).await;
    assert!(
        browser.url().await.ends_with("/ui/login"),
        "sent to the login page"
    );
    browser.fill("input[name=api_key]", &host.api_key).await;
    browser.click("form[action='/ui/login'] button").await;
    assert!(browser.url().await.ends_with("/ui/accounts"));

    // Configure a provider: the test OAuth server reached as `localhost` (another site than
    // 127.0.0.1), IMAP and submission on Dovecot.
    let oauth_port = oauth.rsplit(':').next().expect("port");
    browser.goto(&host.url("/ui/settings")).await;
    browser.fill("#provider-form input[name=id]", "dove").await;
    browser
        .click("select[name=kind] option[value=oauth2]")
        .await;
    browser
        .fill("input[name=client_id]", "mailroom-pages")
        .await;
    browser
        .fill("input[name=client_secret]", "test-secret")
        .await;
    browser
        .fill(
            "input[name=authorize_url]",
            &format!("http://localhost:{oauth_port}/authorize"),
        )
        .await;
    browser
        .fill("input[name=token_url]", &format!("{oauth}/token"))
        .await;
    browser.fill("input[name=scopes]", TOKEN_SCOPES).await;
    browser.fill("input[name=imap_host]", "localhost").await;
    browser.fill("input[name=imap_port]", &imap).await;
    browser
        .click("select[name=imap_tls] option[value=implicit]")
        .await;
    browser.fill("input[name=smtp_host]", "localhost").await;
    browser.fill("input[name=smtp_port]", &smtp).await;
    browser
        .click("select[name=smtp_tls] option[value=starttls]")
        .await;
    browser.click("#provider-form button").await;
    browser.settle("/ui/settings", "id=\"provider-dove\"").await;
    let redirect = browser.text("#provider-dove .redirect-uri").await;
    assert_eq!(redirect, host.url("/v1/oauth/dove/callback"));
    let stored = host
        .services
        .repo
        .get_provider("dove")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.imap.port.to_string(), imap);

    // Connect: the provider auto-consents as the hinted user and sends the browser back.
    browser.goto(&host.url("/ui/accounts")).await;
    browser.fill("#connect input[name=login_hint]", &user).await;
    browser.click("#connect button").await;
    let page = browser.settle("/ui/accounts?", "Mailbox connected").await;
    assert!(
        browser.url().await.starts_with(&host.url("/ui/accounts?")),
        "back on the accounts page"
    );
    assert!(page.contains(&user));
    // The connect-time preflight ran in the worker: IMAP and SMTP logins work.
    browser
        .wait_for(
            &host.url("/ui/accounts"),
            "IMAP <strong>ok</strong>, SMTP <strong>ok</strong>",
        )
        .await;

    // Sync now, then the message shows in the mailbox.
    browser
        .click("tr.account form[action$='/sync'] button")
        .await;
    let (accounts, _) = host
        .services
        .repo
        .list_accounts(None, None, 5)
        .await
        .unwrap();
    let account_id = accounts[0].id.clone();
    let messages = host.url(&format!("/ui/accounts/{account_id}/messages"));
    browser.wait_for(&messages, &subject).await;
    browser.click("#messages tr.message a").await;
    assert_eq!(browser.text("td.from").await, format!("Peer <{peer}>"));
    // The HTML part is in a sandboxed frame: its script did not run.
    let frame = browser.find("iframe.body").await;
    browser.enter_frame(&frame).await;
    let shown = browser.settle("", "meet on <b>Friday</b>").await;
    assert!(shown.contains("Shall we meet"));
    browser.leave_frame().await;
    assert_ne!(browser.title().await, "pwned", "the message's script ran");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the remote image was requested"
    );

    // Reply (cc ourselves) with an attachment.
    browser.click("a.reply").await;
    assert_eq!(
        browser.value("input[name=subject]").await,
        format!("Re: {subject}")
    );
    browser.fill("input[name=cc]", &user).await;
    browser
        .fill("textarea[name=body]", "Friday works. Agenda attached.")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agenda.txt");
    std::fs::write(&file, "1. Plans\n2. Lunch\n").unwrap();
    browser
        .fill("input[type=file]", &file.display().to_string())
        .await;
    browser.click("#compose button").await;
    browser.settle("/send", "The message was sent.").await;

    // It arrives: in the peer's INBOX, threaded and with the attachment...
    let inbox = send_support::inbox_with(&peer, 1).await;
    let reply = mail_parser::MessageParser::default()
        .parse(&inbox[0])
        .expect("a parsable reply");
    assert_eq!(reply.subject(), Some(format!("Re: {subject}").as_str()));
    assert_eq!(
        reply.in_reply_to().as_text(),
        Some(format!("{}@example.test", subject.replace(' ', "-")).as_str())
    );
    assert!(
        reply
            .attachments()
            .any(|a| a.attachment_name() == Some("agenda.txt"))
    );
    // ...and in our own mailbox after the next sync.
    browser.goto(&host.url("/ui/accounts")).await;
    browser
        .click("tr.account form[action$='/sync'] button")
        .await;
    browser.wait_for(&messages, &format!("Re: {subject}")).await;
}
