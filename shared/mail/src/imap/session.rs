//! An authenticated IMAP session with the few commands sync needs, each bounded by the
//! connector's timeout, and a pull-style FETCH reader that hands over one message at a time so
//! memory stays flat whatever the mailbox size.

use std::collections::HashSet;

use async_imap::Session;
use async_imap::imap_proto::{AttributeValue, NameAttribute, Response, Status};
use bytes::Bytes;
use futures::TryStreamExt;

use super::connect::{BoxedIo, ImapConnector};
use super::error::{ImapError, classify_text, connection};

/// A folder's state as STATUS or SELECT report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderStatus {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub messages: u32,
    pub highest_modseq: Option<u64>,
}

/// One message from a FETCH response.
#[derive(Debug, Clone, Default)]
pub struct FetchedMessage {
    pub uid: u32,
    pub flags: Vec<String>,
    pub size: Option<u32>,
    /// Unix seconds.
    pub internal_date: Option<i64>,
    pub modseq: Option<u64>,
    pub body: Option<Bytes>,
    pub gmail_msgid: Option<u64>,
    pub gmail_thrid: Option<u64>,
}

/// A logged-in session.
pub struct ImapSession {
    pub(crate) inner: Session<BoxedIo>,
    pub(crate) connector: ImapConnector,
    /// `None` until the server announced them (login response) or CAPABILITY was asked.
    capabilities: Option<HashSet<String>>,
    host: String,
    /// The `\Sent` folder LIST found in this session, once it ran.
    listed_sent: Option<Option<String>>,
    /// Whether to ask HIGHESTMODSEQ while the capabilities are unknown (what earlier syncs saw).
    condstore_hint: Option<bool>,
    /// A STATUS already asked, answered once more without a round trip (see `status_ahead`).
    status_memo: Option<(String, FolderStatus)>,
    fetch_tag: Option<async_imap::imap_proto::RequestId>,
}

impl std::fmt::Debug for ImapSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSession")
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl ImapSession {
    /// A session after login; `announced` are the capabilities the login response carried
    /// (they may differ from the greeting's, which are not used after login). Without them,
    /// CAPABILITY is asked only when a command needs to know.
    pub(crate) fn start(
        connector: ImapConnector,
        inner: Session<BoxedIo>,
        announced: Option<Vec<String>>,
        host: &str,
    ) -> Self {
        Self {
            inner,
            connector,
            capabilities: announced.map(|caps| caps.into_iter().collect()),
            host: host.to_ascii_lowercase(),
            listed_sent: None,
            condstore_hint: None,
            status_memo: None,
            fetch_tag: None,
        }
    }

    /// Whether the server has the capability; false while the capabilities are unknown (see
    /// [`ImapSession::load_capabilities`]; `open` and `status` load them).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .as_ref()
            .is_some_and(|caps| caps.contains(&name.to_ascii_uppercase()))
    }

    /// Whether the capabilities are known without asking.
    pub fn capabilities_known(&self) -> bool {
        self.capabilities.is_some()
    }

    /// Asks CAPABILITY unless the server already announced its capabilities.
    pub async fn load_capabilities(&mut self) -> Result<(), ImapError> {
        if self.capabilities.is_some() {
            return Ok(());
        }
        let caps = self
            .connector
            .within("CAPABILITY", self.inner.capabilities())
            .await?
            .map_err(|e| ImapError::from_imap("CAPABILITY", e))?;
        self.capabilities = Some(
            caps.iter()
                .map(|c| match c {
                    async_imap::types::Capability::Atom(a) => a.to_ascii_uppercase(),
                    async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".into(),
                    async_imap::types::Capability::Auth(a) => {
                        format!("AUTH={}", a.to_ascii_uppercase())
                    }
                })
                .collect(),
        );
        Ok(())
    }

    /// Whether the server offers CONDSTORE (Dovecot, Gmail; not Outlook).
    pub fn condstore(&self) -> bool {
        self.has_capability("CONDSTORE") || self.has_capability("QRESYNC")
    }

    /// Whether the server is Gmail (X-GM-MSGID, X-GM-THRID).
    pub fn gmail(&self) -> bool {
        self.has_capability("X-GM-EXT-1")
    }

    /// Whether the host is Gmail's (for decisions taken before the capabilities are known).
    fn gmail_host(&self) -> bool {
        let host = self.host.trim_end_matches('.');
        ["gmail.com", "googlemail.com"]
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }

    /// Announces the client with ID to Gmail, which asks for it; other servers do not need it
    /// and it would cost every sync a round trip.
    pub async fn identify(&mut self) -> Result<(), ImapError> {
        let wanted = match &self.capabilities {
            Some(_) => self.has_capability("ID") && (self.gmail() || self.gmail_host()),
            None => self.gmail_host(),
        };
        if !wanted {
            return Ok(());
        }
        let fields = [
            ("name", Some("Mailroom")),
            ("version", Some(env!("CARGO_PKG_VERSION"))),
        ];
        self.connector
            .within("ID", self.inner.id(fields))
            .await?
            .map(|_| ())
            .map_err(|e| ImapError::from_imap("ID", e))
    }

    /// Turns CONDSTORE on for the session so SELECT and STATUS report HIGHESTMODSEQ.
    pub async fn enable_condstore(&mut self) -> Result<(), ImapError> {
        self.load_capabilities().await?;
        if !(self.condstore() && self.has_capability("ENABLE")) {
            return Ok(());
        }
        self.connector
            .within(
                "ENABLE",
                self.inner.run_command_and_check_ok("ENABLE CONDSTORE"),
            )
            .await?
            .map_err(|e| ImapError::from_imap("ENABLE", e))
    }

    /// The `\Sent` folder the last [`ImapSession::sent_folder`] of this session found: `None`
    /// when LIST has not run, `Some(None)` when it found none.
    pub fn listed_sent(&self) -> Option<Option<&str>> {
        self.listed_sent.as_ref().map(Option::as_deref)
    }

    /// The folder marked `\Sent` (SPECIAL-USE), if any (one LIST).
    pub async fn sent_folder(&mut self) -> Result<Option<String>, ImapError> {
        let inner = &mut self.inner;
        let names = self
            .connector
            .within("LIST", async move {
                let stream = inner.list(Some(""), Some("*")).await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?
            .map_err(|e| ImapError::from_imap("LIST", e))?;
        let sent = names
            .iter()
            .find(|n| n.attributes().contains(&NameAttribute::Sent))
            .map(|n| n.name().to_owned());
        self.listed_sent = Some(sent.clone());
        Ok(sent)
    }

    /// Says whether earlier syncs of this account saw CONDSTORE: while the capabilities are
    /// unknown (the server did not announce them at login), STATUS asks HIGHESTMODSEQ or not by
    /// this hint instead of sending CAPABILITY, so a sync with nothing new needs no CAPABILITY.
    pub fn hint_condstore(&mut self, condstore: bool) {
        self.condstore_hint = Some(condstore);
    }

    /// STATUS of a folder (one command, no SELECT). Without known capabilities or a hint,
    /// CAPABILITY is asked first; a server that refuses the hinted form is asked its
    /// capabilities and STATUS once more.
    pub async fn status(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        if matches!(&self.status_memo, Some((f, _)) if f == folder)
            && let Some((_, status)) = self.status_memo.take()
        {
            return Ok(status);
        }
        let hint = match (&self.capabilities, self.condstore_hint) {
            (None, Some(hint)) => hint,
            _ => {
                self.load_capabilities().await?;
                let condstore = self.condstore();
                return self.status_items(folder, condstore).await;
            }
        };
        match self.status_items(folder, hint).await {
            Err(e) if matches!(e, ImapError::Protocol { .. }) && !e.is_missing_folder() => {
                tracing::debug!(error = %e, "STATUS refused; asking CAPABILITY");
                self.load_capabilities().await?;
                let condstore = self.condstore();
                self.status_items(folder, condstore).await
            }
            other => other,
        }
    }

    /// STATUS of a folder, kept so that the next [`ImapSession::status`] of the same folder in
    /// this session returns it without asking again (a check that the folder exists, made before
    /// the sync asks its STATUS anyway). Reading or opening any folder drops it.
    pub async fn status_ahead(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        let status = self.status(folder).await?;
        self.status_memo = Some((folder.to_owned(), status));
        Ok(status)
    }

    async fn status_items(
        &mut self,
        folder: &str,
        condstore: bool,
    ) -> Result<FolderStatus, ImapError> {
        let items = if condstore {
            "(UIDNEXT UIDVALIDITY MESSAGES HIGHESTMODSEQ)"
        } else {
            "(UIDNEXT UIDVALIDITY MESSAGES)"
        };
        let mb = self
            .connector
            .within("STATUS", self.inner.status(folder, items))
            .await?
            .map_err(|e| ImapError::from_imap("STATUS", e))?;
        Ok(FolderStatus {
            uid_validity: mb.uid_validity.unwrap_or(0),
            uid_next: mb.uid_next.unwrap_or(0),
            messages: mb.exists,
            highest_modseq: mb.highest_modseq,
        })
    }

    /// Opens a folder (read-only unless CONDSTORE needs SELECT's parameter).
    pub async fn open(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        self.status_memo = None;
        self.load_capabilities().await?;
        let mb = if self.condstore() {
            self.connector
                .within("SELECT", self.inner.select_condstore(folder))
                .await?
        } else {
            self.connector
                .within("EXAMINE", self.inner.examine(folder))
                .await?
        }
        .map_err(|e| ImapError::from_imap("SELECT", e))?;
        Ok(FolderStatus {
            uid_validity: mb.uid_validity.unwrap_or(0),
            uid_next: mb.uid_next.unwrap_or(0),
            messages: mb.exists,
            highest_modseq: mb.highest_modseq,
        })
    }

    /// UIDs matching a UID SEARCH query, ascending.
    pub async fn uid_search(&mut self, query: &str) -> Result<Vec<u32>, ImapError> {
        self.status_memo = None;
        let set = self
            .connector
            .within("UID SEARCH", self.inner.uid_search(query))
            .await?
            .map_err(|e| ImapError::from_imap("UID SEARCH", e))?;
        let mut uids: Vec<u32> = set.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Starts `UID FETCH <set> <items>`; read the messages with [`ImapSession::next_fetched`].
    pub async fn start_fetch(&mut self, set: &str, items: &str) -> Result<(), ImapError> {
        self.status_memo = None;
        let tag = self
            .connector
            .within(
                "UID FETCH",
                self.inner.run_command(format!("UID FETCH {set} {items}")),
            )
            .await?
            .map_err(|e| ImapError::from_imap("UID FETCH", e))?;
        self.fetch_tag = Some(tag);
        Ok(())
    }

    /// The next message of the running FETCH, or `None` when the server has finished.
    pub async fn next_fetched(&mut self) -> Result<Option<FetchedMessage>, ImapError> {
        let Some(tag) = self.fetch_tag.clone() else {
            return Ok(None);
        };
        loop {
            let response = self
                .connector
                .within("UID FETCH", self.inner.read_response())
                .await?
                .map_err(|e| connection("UID FETCH", e.to_string()))?
                .ok_or_else(|| {
                    connection("UID FETCH", "the server closed the connection".into())
                })?;
            // A body inside the response's buffer is handed over rather than copied (a copy of
            // every message was a visible share of a first sync's CPU).
            let mut in_buffer = None;
            match response.parsed() {
                Response::Fetch(_, attrs) => {
                    let (mut m, body) = fetched_parts(attrs);
                    match body.and_then(|b| offset_in(response.borrow_owner(), b)) {
                        Some(range) => in_buffer = Some((m, range)),
                        None => {
                            m.body = body.map(Bytes::copy_from_slice);
                            return Ok(Some(m));
                        }
                    }
                }
                Response::Done {
                    tag: done,
                    status,
                    outcome,
                } if *done == tag => {
                    self.fetch_tag = None;
                    return match status {
                        Status::Ok => Ok(None),
                        _ => Err(classify_text(
                            "UID FETCH",
                            outcome.information.as_deref().unwrap_or("refused"),
                        )),
                    };
                }
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    return Err(connection(
                        "UID FETCH",
                        format!("BYE {}", outcome.information.as_deref().unwrap_or("")),
                    ));
                }
                // EXISTS, EXPUNGE, other tags' leftovers: nothing sync needs mid-fetch.
                _ => {}
            }
            if let Some((mut m, range)) = in_buffer {
                m.body = Some(response.into_owner().freeze().slice(range));
                return Ok(Some(m));
            }
        }
    }

    /// The underlying async-imap session, for commands sync does not need (tests, tools).
    pub fn raw(&mut self) -> &mut Session<BoxedIo> {
        &mut self.inner
    }

    /// Says goodbye; errors are ignored (the session ends either way).
    pub async fn logout(mut self) {
        let _ = self.connector.within("LOGOUT", self.inner.logout()).await;
    }
}

/// Where `part` lies in `buffer`, if it does.
fn offset_in(buffer: &[u8], part: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(buffer.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= buffer.len()).then_some(start..end)
}

#[cfg(test)]
fn fetched(attrs: &[AttributeValue<'_>]) -> FetchedMessage {
    let (mut m, body) = fetched_parts(attrs);
    m.body = body.map(Bytes::copy_from_slice);
    m
}

/// A FETCH response's attributes, and its body apart (still borrowed from the response).
fn fetched_parts<'a>(attrs: &'a [AttributeValue<'_>]) -> (FetchedMessage, Option<&'a [u8]>) {
    let mut m = FetchedMessage::default();
    let mut body = None;
    for attr in attrs {
        match attr {
            AttributeValue::Uid(uid) => m.uid = *uid,
            AttributeValue::Flags(flags) => m.flags = flags.iter().map(|f| f.to_string()).collect(),
            AttributeValue::Rfc822Size(size) => m.size = Some(*size),
            AttributeValue::ModSeq(modseq) => m.modseq = Some(*modseq),
            AttributeValue::InternalDate(date) => {
                m.internal_date = chrono::DateTime::parse_from_str(date, "%d-%b-%Y %H:%M:%S %z")
                    .ok()
                    .map(|d| d.timestamp());
            }
            AttributeValue::BodySection {
                section: None,
                data: Some(data),
                ..
            }
            | AttributeValue::Rfc822(Some(data)) => body = Some(data.as_ref()),
            AttributeValue::GmailMsgId(id) => m.gmail_msgid = Some(*id),
            AttributeValue::GmailThrId(id) => m.gmail_thrid = Some(*id),
            _ => {}
        }
    }
    (m, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_gmail_fetch_response() {
        let raw = b"* 3 FETCH (UID 42 X-GM-MSGID 1278455344230334865 X-GM-THRID 1266894439832287888 \
FLAGS (\\Seen $Label) RFC822.SIZE 5 INTERNALDATE \"01-Jul-2025 10:00:00 +0000\" BODY[] {5}\r\nhello)\r\n";
        let (rest, response) = Response::parse(raw).expect("a FETCH response");
        assert!(rest.is_empty());
        let Response::Fetch(_, attrs) = response else {
            panic!("not a FETCH response");
        };
        let m = fetched(&attrs);
        assert_eq!(m.uid, 42);
        assert_eq!(m.gmail_msgid, Some(1_278_455_344_230_334_865));
        assert_eq!(m.gmail_thrid, Some(1_266_894_439_832_287_888));
        assert_eq!(m.flags, vec!["\\Seen", "$Label"]);
        assert_eq!(m.size, Some(5));
        assert_eq!(m.internal_date, Some(1_751_364_000));
        assert_eq!(m.body.as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn a_body_is_found_in_its_buffer() {
        let raw = b"* 1 FETCH (UID 7 BODY[] {5}\r\nhello)\r\n";
        let (_, response) = Response::parse(raw).expect("a FETCH response");
        let Response::Fetch(_, attrs) = response else {
            panic!("not a FETCH response");
        };
        let (m, body) = fetched_parts(&attrs);
        assert_eq!(m.uid, 7);
        let range = offset_in(raw, body.expect("a body")).expect("inside the buffer");
        assert_eq!(&raw[range], b"hello");
        let elsewhere = vec![0u8; 4];
        assert_eq!(offset_in(&raw[..10], &elsewhere), None);
    }
}
