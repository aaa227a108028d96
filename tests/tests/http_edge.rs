//! The HTTP edge itself: health, API-key checks, problem+json for unknown routes and methods.

use mailroom_tests::app::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        content_type, "application/problem+json",
        "errors are problem+json"
    );
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:mailroom:problem:")
    );
    assert!(!body["detail"].as_str().unwrap().is_empty());
    (status, body)
}

#[tokio::test]
async fn health_is_public_and_reads_the_store() {
    let app = TestApp::spawn().await;
    let response = app
        .client()
        .get(app.url("/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    let (status, body) = problem(
        app.client()
            .get(app.url("/v1/nothing-here"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["type"], "urn:mailroom:problem:not-found");
    let (status, _) = problem(
        app.authed(Method::DELETE, "/v1/health")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn protected_routes_need_the_right_key() {
    let app = TestApp::spawn().await;
    let protected = mailroom_web::specs().into_iter().find(|s| {
        s.access == mailroom_web::Access::ApiKey && s.method == "GET" && !s.path.contains('{')
    });
    let spec = protected.expect("a protected GET route without parameters exists");
    let (status, body) = problem(app.client().get(app.url(spec.path)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body["detail"].as_str().unwrap().contains(&app.api_key));
    let wrong = app
        .client()
        .get(app.url(spec.path))
        .bearer_auth("x".repeat(40))
        .send()
        .await
        .unwrap();
    let (status, _) = problem(wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let right = app.authed(Method::GET, spec.path).send().await.unwrap();
    assert_ne!(right.status(), StatusCode::UNAUTHORIZED);
}
