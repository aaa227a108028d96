//! A small Gmail stand-in over TLS: `X-GM-EXT-1`, labels as folders (one message may sit in
//! several), `X-GM-MSGID`/`X-GM-THRID` in FETCH, a `\Sent` folder. Only what sync uses, with
//! fixed content; it counts the message bodies it serves so tests see what was downloaded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::throttling::test_acceptor;

/// One message under one label.
#[derive(Clone)]
pub struct GmailMessage {
    pub uid: u32,
    pub msgid: u64,
    pub thrid: u64,
    pub raw: Vec<u8>,
}

/// One label (folder).
#[derive(Clone)]
pub struct GmailFolder {
    pub name: String,
    pub uid_validity: u32,
    pub sent: bool,
    pub messages: Vec<GmailMessage>,
}

/// A running stand-in; stops when dropped.
pub struct FakeGmail {
    pub port: u16,
    pub bodies_served: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGmail {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGmail {
    pub async fn start(tls_dir: &str, folders: Vec<GmailFolder>) -> Self {
        let acceptor = test_acceptor(tls_dir);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let bodies_served = Arc::new(AtomicUsize::new(0));
        let served = bodies_served.clone();
        let folders = Arc::new(folders);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, folders, served) =
                    (acceptor.clone(), folders.clone(), served.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = serve(tls, &folders, &served).await;
                    }
                });
            }
        });
        FakeGmail {
            port,
            bodies_served,
            task,
        }
    }
}

/// The quoted mailbox name at the start of `args`.
fn mailbox(args: &str) -> &str {
    args.strip_prefix('"')
        .and_then(|rest| rest.split('"').next())
        .unwrap_or(args)
}

/// Whether `uid` is in an IMAP UID set (`1:5,7,9:*`); `*` is the highest UID.
fn in_set(set: &str, uid: u32, max: u32) -> bool {
    let value = |v: &str| {
        if v == "*" {
            max
        } else {
            v.parse().unwrap_or(0)
        }
    };
    set.split(',').any(|part| match part.split_once(':') {
        Some((a, b)) => {
            let (a, b) = (value(a), value(b));
            (a.min(b)..=a.max(b)).contains(&uid)
        }
        None => value(part) == uid,
    })
}

async fn serve(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    folders: &[GmailFolder],
    served: &AtomicUsize,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(tls);
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"* OK Gimap ready\r\n").await?;
    let mut selected: Option<&GmailFolder> = None;
    while let Some(line) = lines.next_line().await? {
        let mut parts = line.splitn(3, ' ');
        let (tag, verb) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let args = parts.next().unwrap_or("");
        let mut out = Vec::new();
        match verb.to_ascii_uppercase().as_str() {
            "CAPABILITY" => out.extend(b"* CAPABILITY IMAP4rev1 X-GM-EXT-1 AUTH=XOAUTH2\r\n"),
            "AUTHENTICATE" => {
                write.write_all(b"+ \r\n").await?;
                lines.next_line().await?;
            }
            "LIST" => {
                for f in folders {
                    let flags = if f.sent {
                        "\\HasNoChildren \\Sent"
                    } else {
                        "\\HasNoChildren"
                    };
                    out.extend(format!("* LIST ({flags}) \"/\" \"{}\"\r\n", f.name).as_bytes());
                }
            }
            "STATUS" | "EXAMINE" | "SELECT" => {
                let name = mailbox(args);
                let Some(f) = folders.iter().find(|f| f.name == name) else {
                    write
                        .write_all(format!("{tag} NO [NONEXISTENT] Unknown Mailbox\r\n").as_bytes())
                        .await?;
                    continue;
                };
                let next = f.messages.iter().map(|m| m.uid).max().unwrap_or(0) + 1;
                if verb.eq_ignore_ascii_case("STATUS") {
                    out.extend(
                        format!(
                            "* STATUS \"{}\" (MESSAGES {} UIDNEXT {next} UIDVALIDITY {})\r\n",
                            f.name,
                            f.messages.len(),
                            f.uid_validity
                        )
                        .as_bytes(),
                    );
                } else {
                    selected = Some(f);
                    out.extend(format!("* {} EXISTS\r\n* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {next}] Predicted next UID\r\n", f.messages.len(), f.uid_validity).as_bytes());
                }
            }
            "UID" => {
                let Some(f) = selected else {
                    write
                        .write_all(format!("{tag} BAD no mailbox selected\r\n").as_bytes())
                        .await?;
                    continue;
                };
                let max = f.messages.iter().map(|m| m.uid).max().unwrap_or(0);
                let mut words = args.splitn(2, ' ');
                let (command, rest) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                if command.eq_ignore_ascii_case("SEARCH") {
                    let set = rest
                        .trim_start_matches("UID ")
                        .split(' ')
                        .next()
                        .unwrap_or("");
                    let uids: Vec<String> = f
                        .messages
                        .iter()
                        .filter(|m| in_set(set, m.uid, max))
                        .map(|m| m.uid.to_string())
                        .collect();
                    out.extend(format!("* SEARCH {}\r\n", uids.join(" ")).as_bytes());
                } else {
                    let (set, items) = rest.split_once(' ').unwrap_or((rest, ""));
                    for (seq, m) in f.messages.iter().enumerate() {
                        if !in_set(set, m.uid, max) {
                            continue;
                        }
                        if items.contains("BODY.PEEK[]") {
                            served.fetch_add(1, Ordering::SeqCst);
                            out.extend(format!("* {} FETCH (UID {} X-GM-MSGID {} X-GM-THRID {} FLAGS (\\Seen) RFC822.SIZE {} BODY[] {{{}}}\r\n", seq + 1, m.uid, m.msgid, m.thrid, m.raw.len(), m.raw.len()).as_bytes());
                            out.extend(&m.raw);
                            out.extend(b")\r\n");
                        } else {
                            out.extend(
                                format!(
                                    "* {} FETCH (UID {} X-GM-MSGID {} FLAGS (\\Seen))\r\n",
                                    seq + 1,
                                    m.uid,
                                    m.msgid
                                )
                                .as_bytes(),
                            );
                        }
                    }
                }
            }
            "LOGOUT" => {
                write
                    .write_all(format!("* BYE\r\n{tag} OK LOGOUT done\r\n").as_bytes())
                    .await?;
                return Ok(());
            }
            _ => {
                write
                    .write_all(format!("{tag} BAD unsupported\r\n").as_bytes())
                    .await?;
                continue;
            }
        }
        out.extend(format!("{tag} OK done\r\n").as_bytes());
        write.write_all(&out).await?;
    }
    Ok(())
}
