//! The events the emulator feeds: API Gateway HTTP API (payload 2.0) requests, SQS batches and
//! EventBridge scheduled events, shaped as AWS delivers them.

use serde_json::{Value, json};

/// An API Gateway v2 HTTP request; `authorization` is sent as `Authorization: Bearer <key>`.
pub fn http(
    method: &str,
    path: &str,
    query: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> Value {
    let mut headers = json!({
        "host": "api.example.test",
        "user-agent": "mailroom-bench",
        "content-type": "application/json",
        "x-forwarded-proto": "https",
    });
    if let Some(key) = authorization {
        headers["authorization"] = json!(format!("Bearer {key}"));
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "api.example.test",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "mailroom-bench"
            },
            "requestId": "bench-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1_795_600_000_000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// An SQS batch whose records carry `bodies`.
pub fn sqs(bodies: &[String]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({
                "messageId": format!("bench-message-{i}"),
                "receiptHandle": format!("bench-receipt-{i}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795600000000",
                    "SenderId": "123456789012",
                    "ApproximateFirstReceiveTimestamp": "1795600000000"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:mailroom-sync",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// An EventBridge scheduled event.
pub fn schedule() -> Value {
    json!({
        "version": "0",
        "id": "bench-schedule",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-25T10:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/mailroom-schedule"],
        "detail": {}
    })
}

/// A short summary of an answer: the HTTP status for API Gateway responses, the failed items for
/// SQS batch responses, else the first bytes.
pub fn summary(answer: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(answer) else {
        return String::from_utf8_lossy(&answer[..answer.len().min(80)]).into_owned();
    };
    if let Some(status) = value.get("statusCode") {
        return format!("HTTP {status}");
    }
    if let Some(failures) = value.get("batchItemFailures").and_then(Value::as_array) {
        return format!("{} failed items", failures.len());
    }
    let text = value.to_string();
    text[..text.len().min(80)].to_owned()
}
