//! Bad input, table-driven over every endpoint of the routing table: each case gets a precise
//! answer (problem+json with the expected status and `type`, or for the browser-facing callback
//! the expected page or redirect) and leaves the store, the blob store and the job queue exactly
//! as they were. The table must name every route, so a new route without cases fails here.

mod bad_input_support;

use std::collections::BTreeSet;
use std::time::Duration;

use bad_input_support::{Expect, Harness, cases};
use mailroom_tests::faults::blob_files;
use reqwest::header::CONTENT_TYPE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_bad_input_and_changes_nothing() {
    let mut h = Harness::start().await;
    let table = cases(&h).await;

    let routes: BTreeSet<(String, String)> = mailroom_web::specs()
        .iter()
        .map(|s| (s.method.to_owned(), s.path.to_owned()))
        .collect();
    let covered: BTreeSet<(String, String)> = table
        .iter()
        .map(|c| (c.method.to_string(), c.route.to_owned()))
        .collect();
    let missing: Vec<_> = routes.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes without bad-input cases (add rows to tests/tests/bad_input_support/cases.rs): {missing:?}"
    );
    let unknown: Vec<_> = covered.difference(&routes).collect();
    assert!(
        unknown.is_empty(),
        "cases for routes that do not exist: {unknown:?}"
    );

    let blobs_dir = h.app.data_dir.path().join("blobs");
    for case in &table {
        if let Some(state) = &case.fresh_state {
            h.put_state(state).await;
        }
        let store_before = h.journal.snapshot().await;
        let blobs_before = blob_files(&blobs_dir);
        let auth_before = h.oauth.token_requests("authorization_code");

        let response = case.request(&h).send().await.unwrap_or_else(|e| {
            panic!("{}: the request failed: {e}", case.name);
        });
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match &case.expect {
            Expect::Problem(code, kind) => {
                assert_eq!(status, *code, "{}: {text}", case.name);
                assert_eq!(content_type, "application/problem+json", "{}", case.name);
                let body: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", case.name));
                assert_eq!(
                    body["type"],
                    format!("urn:mailroom:problem:{kind}"),
                    "{}: {body}",
                    case.name
                );
                assert_eq!(body["status"], *code, "{}", case.name);
                assert!(
                    body["detail"].as_str().is_some_and(|d| !d.is_empty()),
                    "{}: a detail that helps: {body}",
                    case.name
                );
            }
            Expect::Page(code) => {
                assert_eq!(status, *code, "{}: {text}", case.name);
                assert!(content_type.starts_with("text/html"), "{}", case.name);
                assert!(
                    !text.contains("<script"),
                    "{}: the page escapes what it shows: {text}",
                    case.name
                );
            }
            Expect::Redirect(error) => {
                assert_eq!(status, 303, "{}: {text}", case.name);
                assert!(
                    location.starts_with(&mailroom_tests::oauth_server::connect::return_to()),
                    "{}: only to the allow-listed return_to: {location}",
                    case.name
                );
                let q = mailroom_tests::oauth_server::connect::query(&location);
                assert_eq!(
                    q.get("error").map(String::as_str),
                    Some(*error),
                    "{}",
                    case.name
                );
                assert!(!q.contains_key("account_id"), "{}", case.name);
                assert!(!location.contains('<'), "{}: {location}", case.name);
            }
            Expect::SeeOther(path) => {
                assert_eq!(status, 303, "{}: {text}", case.name);
                assert_eq!(location, *path, "{}", case.name);
            }
            Expect::Status(code) => assert_eq!(status, *code, "{}: {text}", case.name),
        }
        for secret in h.secrets() {
            assert!(
                !text.contains(&secret) && !location.contains(&secret),
                "{}: a secret leaked into the answer",
                case.name
            );
        }

        let mut store_after = h.journal.snapshot().await;
        let mut store_expected = store_before;
        if let Some(state) = &case.consumes {
            // The one documented change: a callback spends the state it was given.
            let removed = store_expected
                .keys()
                .find(|k| k.pk == format!("STATE#{state}"))
                .cloned();
            assert!(removed.is_some(), "{}: the state existed", case.name);
            store_expected.remove(&removed.unwrap_or_else(|| unreachable!()));
        }
        // Leases are taken and released around work; none may be left over either way.
        store_after.retain(|k, _| !k.sk.starts_with("LEASE#"));
        store_expected.retain(|k, _| !k.sk.starts_with("LEASE#"));
        assert!(
            store_after == store_expected,
            "{}: the store changed:\n{}",
            case.name,
            diff(&store_expected, &store_after)
        );
        assert_eq!(
            blob_files(&blobs_dir),
            blobs_before,
            "{}: blobs changed",
            case.name
        );
        if let Some(jobs) = h.app.jobs.as_mut() {
            let queued = tokio::time::timeout(Duration::from_millis(1), jobs.recv()).await;
            assert!(
                !matches!(queued, Ok(Some(_))),
                "{}: a job was queued: {queued:?}",
                case.name
            );
        }
        assert_eq!(
            h.oauth.token_requests("authorization_code"),
            auth_before,
            "{}: bad input never reaches the provider",
            case.name
        );
    }
    assert!(table.len() > 100, "the table holds {} cases", table.len());
}

fn diff(
    before: &mailroom_tests::faults::Snapshot,
    after: &mailroom_tests::faults::Snapshot,
) -> String {
    let mut out = String::new();
    for (k, v) in after {
        match before.get(k) {
            None => out.push_str(&format!("  added {}/{}\n", k.pk, k.sk)),
            Some(old) if old != v => out.push_str(&format!("  changed {}/{}\n", k.pk, k.sk)),
            _ => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        out.push_str(&format!("  removed {}/{}\n", k.pk, k.sk));
    }
    out
}
