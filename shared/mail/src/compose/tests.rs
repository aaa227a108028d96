//! Unit tests of validation and MIME building: built messages are parsed back with mail-parser
//! and checked part by part.

use std::str::FromStr;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lettre::Address;
use mail_parser::{MessageParser, MimeHeaders};
use mailroom_core::domain::MessageMeta;

use super::*;

fn request(json: serde_json::Value) -> SendRequest {
    serde_json::from_value(json).expect("request JSON")
}

fn fields(err: ComposeError) -> Vec<String> {
    match err {
        ComposeError::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected field errors, got {other}"),
    }
}

fn sender() -> Address {
    Address::from_str("alice@example.test").unwrap()
}

#[test]
fn refuses_header_injection_everywhere() {
    let cases = [
        serde_json::json!({"to": ["b@example.test"], "subject": "Hi\r\nBcc: evil@x.test", "text": "t"}),
        serde_json::json!({"to": ["b@example.test\nBcc: evil@x.test"], "text": "t"}),
        serde_json::json!({"to": [{"address": "b@example.test", "name": "B\r\nX-Evil: 1"}], "text": "t"}),
        serde_json::json!({"to": ["b@example.test"], "text": "t", "headers": {"X-Tag": "a\r\nBcc: e@x.test"}}),
        serde_json::json!({"to": ["b@example.test"], "text": "t", "attachments": [
            {"filename": "a\r\n.txt", "content_type": "text/plain", "content_base64": "YQ=="}]}),
        serde_json::json!({"to": ["b@example.test"], "subject": "nul\u{0}byte", "text": "t"}),
    ];
    for case in cases {
        let err = validate(&request(case.clone()), &Limits::default()).unwrap_err();
        assert!(matches!(err, ComposeError::Invalid(_)), "{case}: {err}");
    }
}

#[test]
fn reports_every_bad_field_by_name() {
    let req = request(serde_json::json!({
        "to": ["not an address", "ok@example.test"],
        "cc": [{"address": "also@bad@x"}],
        "text": "t",
        "headers": {"From": "x@y.test", "X-Fine": "yes"},
        "attachments": [{"filename": "r.pdf", "content_type": "application/pdf", "content_base64": "%%%"}]
    }));
    let got = fields(validate(&req, &Limits::default()).unwrap_err());
    assert_eq!(
        got,
        vec![
            "to[0]",
            "cc[0].address",
            "attachments[0].content_base64",
            "headers.From"
        ]
    );
}

#[test]
fn needs_a_recipient_and_some_content() {
    let got = fields(
        validate(
            &request(serde_json::json!({"text": "t"})),
            &Limits::default(),
        )
        .unwrap_err(),
    );
    assert_eq!(got, vec!["to"]);
    let got = fields(
        validate(
            &request(serde_json::json!({"to": ["a@example.test"]})),
            &Limits::default(),
        )
        .unwrap_err(),
    );
    assert_eq!(got, vec!["text"]);
}

#[test]
fn refuses_attachments_over_the_limit_before_decoding() {
    let big = STANDARD.encode(vec![7u8; 3000]);
    let req = request(
        serde_json::json!({"to": ["a@example.test"], "attachments": [
        {"filename": "a.bin", "content_type": "application/octet-stream", "content_base64": big}]}),
    );
    let limits = Limits {
        max_attachment_bytes: 2999,
        ..Limits::default()
    };
    match validate(&req, &limits).unwrap_err() {
        ComposeError::TooLarge { total, limit } => {
            assert!(total >= 2998, "{total}");
            assert_eq!(limit, 2999);
        }
        other => panic!("{other}"),
    }
    let ok = Limits {
        max_attachment_bytes: 3000,
        ..Limits::default()
    };
    assert_eq!(
        validate(&req, &ok).unwrap().attachments[0].bytes.len(),
        3000
    );
}

#[test]
fn builds_alternative_related_and_mixed_with_encoded_names() {
    let png = vec![0x89, b'P', b'N', b'G', 0, 1, 2, 255];
    let pdf = b"%PDF-1.4 binary \x00\x01\xff".to_vec();
    let req = request(serde_json::json!({
        "to": [{"address": "bob@example.test", "name": "Bób Ünïcode"}],
        "cc": ["Carol <carol@example.test>"],
        "bcc": ["dave@example.test"],
        "subject": "Grüße aus Köln – 日本語",
        "text": "plain body ✓",
        "html": "<p>html body <img src=\"cid:logo\"></p>",
        "headers": {"X-Campaign": "q4", "List-Unsubscribe": "<mailto:u@example.test>"},
        "attachments": [
            {"filename": "logo.png", "content_type": "image/png", "content_base64": STANDARD.encode(&png), "content_id": "<logo>"},
            {"filename": "Bericht für März.pdf", "content_type": "application/pdf", "content_base64": STANDARD.encode(&pdf)}
        ]
    }));
    let draft = validate(&req, &Limits::default()).unwrap();
    let composed = build(&draft, &sender(), None, SystemTime::now()).unwrap();
    assert!(
        composed.message_id.ends_with("@example.test>"),
        "{}",
        composed.message_id
    );
    assert_eq!(
        composed.recipients,
        vec![
            "bob@example.test",
            "carol@example.test",
            "dave@example.test"
        ]
    );
    let raw = String::from_utf8_lossy(&composed.bytes).to_string();
    assert!(
        !raw.contains("dave@example.test"),
        "Bcc must not be in the headers"
    );
    assert!(
        raw.contains("filename*0*=utf-8''"),
        "RFC 2231 filename: {raw}"
    );
    assert!(raw.contains("=?utf-8?"), "RFC 2047 subject: {raw}");

    let parsed = MessageParser::default().parse(&composed.bytes).unwrap();
    assert_eq!(parsed.subject(), Some("Grüße aus Köln – 日本語"));
    assert_eq!(
        parsed.message_id(),
        Some(&composed.message_id[1..composed.message_id.len() - 1])
    );
    assert_eq!(
        parsed.to().unwrap().first().unwrap().name(),
        Some("Bób Ünïcode")
    );
    assert_eq!(parsed.body_text(0).as_deref(), Some("plain body ✓"));
    assert!(parsed.body_html(0).unwrap().contains("cid:logo"));
    assert_eq!(parsed.content_type().unwrap().subtype(), Some("mixed"));
    assert_eq!(parsed.header_raw("X-Campaign").map(str::trim), Some("q4"));
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 2);
    let logo = attachments
        .iter()
        .find(|a| a.content_id() == Some("logo"))
        .unwrap();
    assert_eq!(logo.contents(), &png[..]);
    let report = attachments
        .iter()
        .find(|a| a.attachment_name() == Some("Bericht für März.pdf"))
        .unwrap();
    assert_eq!(report.contents(), &pdf[..]);
    assert!(raw.contains("multipart/related"));
    assert!(raw.contains("multipart/alternative"));
}

#[test]
fn a_reply_threads_under_its_parent() {
    let parent = MessageMeta {
        message_id_header: Some("parent@example.test".into()),
        references: vec!["root@example.test".into(), "mid@example.test".into()],
        subject: Some("Budget".into()),
        ..Default::default()
    };
    let reply = ReplyContext::from_parent(&parent).unwrap();
    assert_eq!(reply.in_reply_to, "<parent@example.test>");
    assert_eq!(
        reply.references,
        vec![
            "<root@example.test>",
            "<mid@example.test>",
            "<parent@example.test>"
        ]
    );
    assert_eq!(reply.reply_subject(), "Re: Budget");
    let again = ReplyContext {
        parent_subject: Some("RE: Budget".into()),
        ..reply.clone()
    };
    assert_eq!(again.reply_subject(), "RE: Budget");

    let draft = validate(
        &request(serde_json::json!({"to": ["b@example.test"], "text": "ok"})),
        &Limits::default(),
    )
    .unwrap();
    let composed = build(&draft, &sender(), Some(&reply), SystemTime::now()).unwrap();
    let parsed = MessageParser::default().parse(&composed.bytes).unwrap();
    assert_eq!(parsed.subject(), Some("Re: Budget"));
    assert_eq!(parsed.in_reply_to().as_text(), Some("parent@example.test"));
    let refs: Vec<&str> = parsed
        .references()
        .as_text_list()
        .map(|l| l.iter().map(|s| s.as_ref()).collect())
        .unwrap_or_default();
    assert_eq!(
        refs,
        vec![
            "root@example.test",
            "mid@example.test",
            "parent@example.test"
        ]
    );

    let without_id = MessageMeta::default();
    assert!(ReplyContext::from_parent(&without_id).is_none());
}

#[test]
fn every_body_shape_builds_and_parses() {
    let bytes = STANDARD.encode(b"\x00\x01binary\xff");
    let shapes = [
        (
            serde_json::json!({"to": ["b@example.test"], "html": "<b>only html</b>"}),
            "text/html",
            0,
        ),
        (
            serde_json::json!({"to": ["b@example.test"], "attachments": [
            {"filename": "a.bin", "content_type": "application/octet-stream", "content_base64": bytes}]}),
            "multipart/mixed",
            1,
        ),
        (
            serde_json::json!({"to": ["b@example.test"], "attachments": [
            {"filename": "i.png", "content_type": "image/png", "content_base64": bytes, "content_id": "i"},
            {"filename": "a.bin", "content_type": "application/octet-stream", "content_base64": bytes}]}),
            "multipart/mixed",
            2,
        ),
        (
            serde_json::json!({"to": ["b@example.test"], "text": "t", "attachments": [
            {"filename": "i.png", "content_type": "image/png", "content_base64": bytes, "content_id": "i"}]}),
            "multipart/related",
            1,
        ),
    ];
    for (json, top, parts) in shapes {
        let draft = validate(&request(json.clone()), &Limits::default()).unwrap();
        let composed = build(&draft, &sender(), None, SystemTime::now()).unwrap();
        let parsed = MessageParser::default().parse(&composed.bytes).unwrap();
        let ct = parsed.content_type().unwrap();
        assert_eq!(
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")),
            top,
            "{json}"
        );
        assert_eq!(parsed.attachments().count(), parts, "{json}");
        for a in parsed.attachments() {
            assert_eq!(a.contents(), b"\x00\x01binary\xff", "{json}");
        }
    }
}

#[test]
fn long_non_ascii_subjects_and_filenames_fold_and_round_trip() {
    let subject = "Überweisung für das Projekt „Größenwahn“ – "
        .repeat(8)
        .trim_end()
        .to_owned();
    let filename = format!(
        "{}.pdf",
        "Ärger mit den Übersetzungen ".repeat(6).trim_end()
    );
    let req = request(serde_json::json!({
        "to": ["b@example.test"], "subject": subject.clone(), "text": "t",
        "attachments": [{"filename": filename.clone(), "content_type": "application/pdf",
                         "content_base64": STANDARD.encode(b"%PDF")}]
    }));
    let draft = validate(&req, &Limits::default()).unwrap();
    let composed = build(&draft, &sender(), None, SystemTime::now()).unwrap();
    let raw = String::from_utf8(composed.bytes.clone()).expect("the message is 7-bit");
    assert!(
        raw.lines().all(|l| l.len() <= 998),
        "no line over RFC 5322's limit"
    );
    let parsed = MessageParser::default().parse(&composed.bytes).unwrap();
    assert_eq!(parsed.subject(), Some(subject.as_str()));
    let part = parsed.attachments().next().unwrap();
    assert_eq!(part.attachment_name(), Some(filename.as_str()));
}
