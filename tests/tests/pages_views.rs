//! What the pages show: account states (reauth with reason and a reconnect button, degraded with
//! the last error), preflight findings and message counts; the mailbox newest first across pages;
//! and the local host's data directory created owner-only.

mod pages_support;

use mailroom_core::domain::AccountStatus;
use mailroom_tests::app::TestApp;
use pages_support::{Visitor, stored_account, stored_message};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_accounts_page_shows_status_reasons_preflight_and_counts() {
    let mut app = TestApp::spawn().await;
    let repo = app.services.repo.clone();
    let mut reauth = stored_account(&app, "reauth@example.test").await;
    reauth.status = AccountStatus::ReauthRequired;
    reauth.status_reason = Some("the grant was revoked <AADSTS50173>".into());
    repo.update_account(&mut reauth).await.unwrap();
    let mut degraded = stored_account(&app, "degraded@example.test").await;
    degraded.status = AccountStatus::Degraded;
    degraded.last_error = Some("IMAP connection reset by peer".into());
    degraded.extra.insert(
        "preflight".into(),
        json!({"imap": "ok", "smtp": "auth_disabled_for_tenant", "checked_at": "2026-11-25T10:00:00Z",
               "fix": "Set-TransportConfig -SmtpClientAuthenticationDisabled $false"}),
    );
    degraded.extra.insert(
        "folders".into(),
        json!({"INBOX": {"messages": 40, "synced_at": 1}, "Sent": {"messages": 2, "synced_at": 1}}),
    );
    repo.update_account(&mut degraded).await.unwrap();

    let mut v = Visitor::login(&app).await;
    let page = v.get("/ui/accounts").await;
    assert_eq!(page.status, StatusCode::OK);
    let row = |email: &str| {
        let start = page
            .body
            .find(&format!("data-email=\"{email}\""))
            .expect("a row per account");
        let end = page.body[start..].find("</tr>").unwrap() + start;
        page.body[start..end].to_owned()
    };
    let r = row("reauth@example.test");
    assert!(r.contains("reauth_required"));
    assert!(
        r.contains("the grant was revoked &lt;AADSTS50173&gt;"),
        "{r}"
    );
    assert!(r.contains(">Reconnect</button>"), "a reconnect button: {r}");
    assert!(r.contains("name=\"login_hint\" value=\"reauth@example.test\""));
    let d = row("degraded@example.test");
    assert!(d.contains("degraded") && d.contains("last error: IMAP connection reset by peer"));
    assert!(!d.contains("Reconnect"));
    assert!(
        d.contains("SMTP <strong>auth_disabled_for_tenant</strong>"),
        "{d}"
    );
    assert!(d.contains("Set-TransportConfig -SmtpClientAuthenticationDisabled $false"));
    assert!(
        d.contains(">42<") && d.contains("INBOX: 40") && d.contains("Sent: 2"),
        "{d}"
    );
    for r in [&r, &d] {
        for action in ["/sync", "/verify", "/delete"] {
            assert!(r.contains(&format!("{action}\"")), "{action} in {r}");
        }
    }

    // "Sync now" queues a sync job for that account and says so with a fixed text.
    let token = pages_support::csrf(&page.body);
    let r = v
        .post(
            &format!("/ui/accounts/{}/sync", degraded.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/ui/accounts?done=sync");
    let mut jobs = app.jobs.take().expect("the in-process queue");
    let job = tokio::time::timeout(std::time::Duration::from_secs(10), jobs.recv())
        .await
        .expect("a job was queued")
        .expect("the queue is open");
    assert_eq!(job.account_id, degraded.id);
    let shown = v.get("/ui/accounts?done=sync").await;
    assert!(shown.body.contains("A sync was queued"));
    // A crafted notice is not shown.
    let crafted = v
        .get("/ui/accounts?done=Your+key+leaked%2C+visit+evil.example")
        .await;
    assert!(!crafted.body.contains("evil.example"));
}

#[tokio::test]
async fn the_mailbox_lists_newest_first_across_pages() {
    let app = TestApp::spawn().await;
    let account = stored_account(&app, "reader@example.test").await;
    for uid in 1..=30u32 {
        let subject = format!("Message number {uid:02}");
        let raw = format!("From: a@example.test\r\nSubject: {subject}\r\n\r\nbody {uid}\r\n");
        stored_message(
            &app,
            &account,
            uid,
            "a@example.test",
            &subject,
            raw.as_bytes(),
        )
        .await;
    }
    let mut v = Visitor::login(&app).await;
    let first = v
        .get(&format!("/ui/accounts/{}/messages", account.id))
        .await;
    let order = |body: &str| -> Vec<u32> {
        body.match_indices("Message number ")
            // The subject links, not the snippets under them.
            .filter(|(i, _)| {
                body[..*i].ends_with("\">") && body[..*i].rfind("<a ") > body[..*i].rfind("<span")
            })
            .map(|(i, m)| body[i + m.len()..i + m.len() + 2].parse().unwrap())
            .collect()
    };
    let page_one = order(&first.body);
    assert_eq!(page_one, (6..=30).rev().collect::<Vec<_>>());
    let start = first
        .body
        .find("class=\"next\" href=\"")
        .expect("a next link")
        + 19;
    let end = first.body[start..].find('"').unwrap() + start;
    let next = first.body[start..end].replace("&amp;", "&");
    let second = v.get(&next).await;
    assert_eq!(order(&second.body), (1..=5).rev().collect::<Vec<_>>());
    assert!(
        !second.body.contains("class=\"next\""),
        "the last page has no next link"
    );
    // A text message is shown escaped in a <pre>, with a reply link.
    let id = stored_message(
        &app,
        &account,
        31,
        "b@example.test",
        "Text",
        b"From: b@example.test\r\nSubject: Text\r\n\r\nif a < b && c > d\r\n",
    )
    .await;
    let view = v
        .get(&format!("/ui/accounts/{}/messages/{id}", account.id))
        .await;
    assert!(
        view.body
            .contains("<pre class=\"body\">if a &lt; b &amp;&amp; c &gt; d")
    );
    assert!(view.body.contains(&format!("compose?reply={id}")));
    let compose = v
        .get(&format!("/ui/accounts/{}/compose?reply={id}", account.id))
        .await;
    assert!(
        compose
            .body
            .contains("name=\"to\" value=\"b@example.test\"")
    );
    assert!(compose.body.contains("name=\"subject\" value=\"Re: Text\""));
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("fresh").join("data");
    let text = dir.display().to_string();
    let config = mailroom_runtime::Config::from(&move |name: &str| {
        (name == "MAILROOM_DATA_DIR").then(|| text.clone())
    })
    .unwrap();
    mailroom_runtime::backends::open(&config)
        .await
        .expect("open");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(
        config
            .return_to_allowlist
            .contains(&"http://127.0.0.1:3000".to_owned()),
        "the host's own origin is an allowed return_to"
    );
}
