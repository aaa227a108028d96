//! The cut path against the whole parse: the same fields for every shape, and no panic on
//! broken input (every truncation and many byte flips of the samples).

use super::skip::{cut_binary_parts, decoded_size};
use super::{FIELDS_PARSER, cuts_agree, parse_fields, parse_fields_whole};

const NESTED: &str = "From: =?utf-8?b?w4Fubg==?= <ann@example.test>\r\nTo: bob@example.test\r\n\
Subject: =?iso-8859-1?q?R=E9sum=E9?= and =?utf-8?b?Y2Fmw6k=?=\r\nMessage-ID: <n1@example.test>\r\n\
Date: Tue, 1 Jul 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed;\r\n boundary=\"outer b\"\r\n\r\npreamble\r\n\
--outer b\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n\
--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Caf=C3=A9 au lait,  soft=\r\n break   here\r\n\
--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
PHA+Q2Fmw6kgYXUgbGFpdDwvcD4=\r\n\
--alt--\r\n\
--outer b\r\nContent-Type: application/pdf; name=\"r\u{e9}sum\u{e9}.pdf\"\r\n\
Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\nJVBERi0xLjQK\r\nAAE=\r\n\
--outer b\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n\
--rel\r\nContent-Type: image/png\r\nContent-ID: <i1>\r\nContent-Transfer-Encoding: base64\r\n\r\n\
iVBORw0KGgo=\r\n\
--rel\r\nContent-Type: text/plain\r\n\r\ninner text\r\n\
--rel--\r\n\
--outer b\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: inner\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\n\
Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--in--\r\n\
--outer b--\r\nepilogue\r\n";

/// The shape bench-sync delivers: text, then a 48 KB base64 attachment.
fn bench_like() -> String {
    let mut m = String::from(
        "From: Bench <bench@example.test>\r\nSubject: bench 20\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n",
    );
    for line in 0..40 {
        m.push_str(&format!("Line {line}: the quick brown fox.\r\n"));
    }
    m.push_str("--b\r\nContent-Type: application/octet-stream; name=data.bin\r\n");
    m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    for _ in 0..842 {
        m.push_str("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n");
    }
    m.push_str("--b--\r\n");
    m
}

/// Messages the cut path must leave alone or handle exactly as the whole parse.
fn odd_ones() -> Vec<String> {
    let part = |headers: &str, body: &str| {
        format!(
            "Subject: odd\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n{headers}\r\n\r\n{body}\r\n--q--\r\n"
        )
    };
    vec![
        // A boundary inside a line: mail-parser splits there.
        part(
            "Content-Type: image/gif\r\nContent-Transfer-Encoding: base64",
            "R0lG--qODlh",
        ),
        // Two Content-Types, unpadded and odd padding, a dash, LF line ends.
        part(
            "Content-Type: image/gif\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64",
            "R0lGODlh",
        ),
        part(
            "Content-Type: image/gif\r\nContent-Transfer-Encoding: base64",
            "R0lGODl",
        ),
        part(
            "Content-Type: image/gif\r\nContent-Transfer-Encoding: base64",
            "R0lGOD==",
        ),
        part(
            "Content-Type: image/gif\r\nContent-Transfer-Encoding: base64",
            "R0l-GODlh",
        ),
        part(
            "Content-Type: image/gif\r\nContent-Transfer-Encoding: BASE64 ",
            "R0lGODlh",
        ),
        part(
            "Content-Type: image/gif\r\nContent-Transfer-Encoding: base64",
            "",
        ),
        part(
            "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64",
            "aGVsbG8=",
        ),
        "Subject: lf\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: image/gif\n\
Content-Transfer-Encoding: base64\n\nR0lGODlh\n--q--\n"
            .into(),
        // No closing delimiter, a quoted boundary with a dash, RFC 2231 boundary.
        "Subject: open\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\
Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n"
            .into(),
        "Subject: q\r\nContent-Type: multipart/mixed; boundary=\"a-b\"\r\n\r\n--a-b\r\n\
Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n--a-b--\r\n"
            .into(),
        "Subject: q\r\nContent-Type: multipart/mixed; boundary*=us-ascii''q\r\n\r\n--q\r\n\
Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n--q--\r\n"
            .into(),
    ]
}

#[test]
fn cut_fields_equal_the_whole_parse() {
    let bench = bench_like();
    let mut samples = vec![NESTED.to_owned(), bench.clone()];
    samples.extend(odd_ones());
    for sample in &samples {
        let raw = sample.as_bytes();
        assert_eq!(parse_fields(raw), parse_fields_whole(raw), "{sample}");
    }
}

#[test]
fn nested_attachments_are_cut_and_sized() {
    let (copy, cuts) = cut_binary_parts(NESTED.as_bytes()).expect("parts to cut");
    // The PDF and the inline PNG; the HTML is text and the ZIP is inside a message.
    assert_eq!(cuts.len(), 2);
    assert_eq!(cuts[0].size, Some(9 + 9 + 2));
    assert_eq!(cuts[1].size, Some(8));
    assert!(copy.len() < NESTED.len());
    let fields = parse_fields(NESTED.as_bytes());
    assert_eq!(fields.subject.as_deref(), Some("Résumé and café"));
    assert_eq!(fields.from, vec!["Ánn <ann@example.test>"]);
    assert_eq!(
        fields.snippet.as_deref(),
        Some("Café au lait, soft break here")
    );
    let sizes: Vec<(String, u64)> = fields
        .attachments
        .iter()
        .map(|a| (a.content_type.clone(), a.size))
        .collect();
    assert!(sizes.contains(&("application/pdf".into(), 20)), "{sizes:?}");
    assert!(sizes.contains(&("image/png".into(), 8)), "{sizes:?}");
    assert_eq!(
        fields.attachments[0].filename.as_deref(),
        Some("résumé.pdf")
    );
}

#[test]
fn the_bench_attachment_is_cut() {
    let bench = bench_like();
    let (_, cuts) = cut_binary_parts(bench.as_bytes()).expect("parts to cut");
    assert_eq!(cuts.len(), 1);
    assert_eq!(cuts[0].size, Some(842 * 54));
    assert_eq!(parse_fields(bench.as_bytes()).attachments[0].size, 842 * 54);
}

/// Long text messages: single part, quoted-printable, a text attachment, UTF-16, in a
/// multipart after a short first text part.
fn long_texts() -> Vec<String> {
    let mut lines = String::new();
    for line in 0..120 {
        lines.push_str(&format!(
            "Line {line} of the message: caf\u{e9}   the quick brown fox jumps over the dog.\r\n"
        ));
    }
    let qp = lines
        .replace('\u{e9}', "=C3=A9")
        .replace(" dog.", " =\r\ndog.");
    vec![
        format!("Subject: long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{lines}"),
        format!("Subject: bare\r\n\r\n{lines}"),
        format!(
            "Subject: qp\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp}"
        ),
        format!(
            "Subject: att\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\
Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\n{lines}\r\n--z--\r\n"
        ),
        format!(
            "Subject: second\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\
Content-Type: text/plain\r\n\r\nshort\r\n--z\r\nContent-Type: text/plain\r\n\r\n{lines}\r\n--z--\r\n"
        ),
        format!(
            "Subject: alt\r\nContent-Type: multipart/alternative; boundary=z\r\n\r\n--z\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{lines}\r\n--z\r\nContent-Type: text/html\r\n\r\n\
<p>{lines}</p>\r\n--z--\r\n"
        ),
        format!("Subject: u16\r\nContent-Type: text/plain; charset=utf-16\r\n\r\n{lines}"),
    ]
}

#[test]
fn long_text_tails_are_cut_with_the_same_fields() {
    for (at, sample) in long_texts().iter().enumerate() {
        let raw = sample.as_bytes();
        assert_eq!(parse_fields(raw), parse_fields_whole(raw), "sample {at}");
        // Cut through at many places too.
        for len in (0..raw.len()).step_by(97) {
            let raw = &raw[..len];
            assert_eq!(
                parse_fields(raw),
                parse_fields_whole(raw),
                "sample {at} at {len}"
            );
        }
    }
    // The cut path is taken (mail-parser agrees) where it can be, not for the attachment.
    for (at, agrees) in [(0, true), (1, true), (2, true), (3, false), (5, true)] {
        let sample = &long_texts()[at];
        let (copy, cuts) = cut_binary_parts(sample.as_bytes()).expect("a tail to cut");
        let message = FIELDS_PARSER.parse(&copy).expect("a message");
        assert_eq!(cuts_agree(&message, &cuts), agrees, "sample {at}");
    }
    let single = &long_texts()[0];
    let (copy, cuts) = cut_binary_parts(single.as_bytes()).expect("a tail to cut");
    assert_eq!(cuts.len(), 1);
    assert_eq!(cuts[0].size, None);
    assert!(copy.len() < 2 * 2048 + 200);
    assert!(cut_binary_parts(long_texts()[6].as_bytes()).is_none());
    let fields = parse_fields(single.as_bytes());
    assert!(
        fields
            .snippet
            .is_some_and(|s| s.starts_with("Line 0 of the message: café the quick"))
    );
}

#[test]
fn plain_messages_are_not_copied() {
    assert!(cut_binary_parts(b"Subject: hi\r\n\r\nhello\r\n").is_none());
    assert!(cut_binary_parts(b"").is_none());
    assert!(cut_binary_parts(b"no headers at all").is_none());
}

#[test]
fn decoded_sizes_follow_the_padding() {
    assert_eq!(decoded_size(b"AAEC\r\n"), Some(3));
    assert_eq!(decoded_size(b"AA==\r\n"), Some(1));
    assert_eq!(decoded_size(b"AAE=\r\n \t"), Some(2));
    assert_eq!(decoded_size(b"AA\r\nEC\r\nAA\r\nE="), Some(5));
    assert_eq!(decoded_size(b""), Some(0));
    assert_eq!(decoded_size(b"AAE"), None);
    assert_eq!(decoded_size(b"A==="), None);
    assert_eq!(decoded_size(b"AA=A"), None);
    assert_eq!(decoded_size(b"AA-A"), None);
}

/// Cheap deterministic bytes, so the broken inputs are the same on every run.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn broken_input_never_panics_and_reads_as_the_whole_parse() {
    let mut samples = vec![NESTED.as_bytes().to_vec()];
    samples.extend(odd_ones().into_iter().map(String::into_bytes));
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for sample in &samples {
        for len in 0..=sample.len() {
            let raw = &sample[..len];
            assert_eq!(parse_fields(raw), parse_fields_whole(raw), "cut at {len}");
        }
        for _ in 0..300 {
            let mut raw = sample.clone();
            for _ in 0..3 {
                let at = (next(&mut state) as usize) % raw.len();
                const BYTES: &[u8] = b"-\r\n=A \"\\;:";
                raw[at] = BYTES[(next(&mut state) as usize) % BYTES.len()];
            }
            assert_eq!(
                parse_fields(&raw),
                parse_fields_whole(&raw),
                "{}",
                String::from_utf8_lossy(&raw)
            );
        }
    }
}
