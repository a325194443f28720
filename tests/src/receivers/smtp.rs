//! [`SmtpSink`]: a small SMTP server (plain, no TLS) speaking enough of RFC
//! 5321 for real clients — EHLO/HELO, AUTH PLAIN/LOGIN, MAIL FROM, RCPT TO,
//! DATA with dot-unstuffing, RSET, NOOP, QUIT — that stores every message it
//! accepts and can be scripted to refuse at a stage with a given reply code.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_parser::MimeHeaders as _;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The longest command line or data line read; a longer one ends the session.
const MAX_LINE: u64 = 64 * 1024;
/// The largest message accepted.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;

/// Where in a session the sink refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpStage {
    /// The greeting: the code is sent instead of `220` and the connection
    /// closed.
    Greeting,
    /// `MAIL FROM`.
    MailFrom,
    /// Each `RCPT TO`.
    RcptTo,
    /// The end of `DATA` (after the message was sent).
    Data,
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct SmtpMessage {
    /// What the client said in `EHLO`/`HELO`.
    pub helo: String,
    /// The user name and password of `AUTH`, if the client logged in.
    pub auth: Option<(String, String)>,
    /// The envelope sender.
    pub mail_from: String,
    /// The envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-unstuffed, lines ending in CRLF.
    pub data: String,
}

impl SmtpMessage {
    fn parsed(&self) -> Option<mail_parser::Message<'_>> {
        mail_parser::MessageParser::default().parse(self.data.as_bytes())
    }

    /// The decoded `Subject`.
    #[must_use]
    pub fn subject(&self) -> Option<String> {
        self.parsed()?.subject().map(str::to_owned)
    }

    /// A header's decoded text value (first occurrence).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        let parsed = self.parsed()?;
        let value = parsed.header(name)?;
        value
            .as_text()
            .map(|t| t.trim().to_owned())
            .or_else(|| parsed.header_raw(name).map(|t| t.trim().to_owned()))
    }

    /// The `Message-ID`, without its angle brackets.
    #[must_use]
    pub fn message_id(&self) -> Option<String> {
        self.parsed()?.message_id().map(str::to_owned)
    }

    /// The decoded `text/plain` part (`None` when there is none: an HTML
    /// part converted to text does not count).
    #[must_use]
    pub fn text(&self) -> Option<String> {
        self.part("plain")
    }

    /// The decoded `text/html` part.
    #[must_use]
    pub fn html(&self) -> Option<String> {
        self.part("html")
    }

    fn part(&self, subtype: &str) -> Option<String> {
        let parsed = self.parsed()?;
        let part = parsed.parts.iter().find(|p| {
            p.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("text")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case(subtype))
            })
        })?;
        part.text_contents().map(str::to_owned)
    }

    /// The content type of the whole message (`multipart/alternative`).
    #[must_use]
    pub fn content_type(&self) -> Option<String> {
        let parsed = self.parsed()?;
        let ct = parsed.content_type()?;
        Some(match ct.subtype() {
            Some(sub) => format!("{}/{sub}", ct.ctype()),
            None => ct.ctype().to_owned(),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    stage: SmtpStage,
    code: u16,
}

#[derive(Debug, Default)]
struct Inner {
    messages: Mutex<Vec<SmtpMessage>>,
    arrived: Notify,
    sessions: AtomicUsize,
    /// Faults for the next sessions, one each, in order.
    next: Mutex<VecDeque<Fault>>,
    /// A fault for every session once `next` is used up.
    always: Mutex<Option<Fault>>,
}

/// An SMTP server on 127.0.0.1. Stopped when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    inner: Arc<Inner>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// A sink accepting every message.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the SMTP sink: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"));
        let inner = Arc::new(Inner::default());
        let shared = Arc::clone(&inner);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = Arc::clone(&shared);
                tokio::spawn(async move {
                    // A client that hangs up mid-session is none of the
                    // sink's business.
                    let _ = session(stream, &inner).await;
                });
            }
        });
        Self { inner, addr, task }
    }

    /// `127.0.0.1:PORT`, as a notifier's `smarthost`.
    #[must_use]
    pub fn smarthost(&self) -> String {
        self.addr.to_string()
    }

    /// Refuses at `stage` with `code` in each of the next `sessions` sessions.
    pub fn refuse_next(&self, sessions: usize, stage: SmtpStage, code: u16) {
        self.inner
            .next
            .lock()
            .extend(std::iter::repeat_n(Fault { stage, code }, sessions));
    }

    /// Refuses at `stage` with `code` in every session from now on (after
    /// those scripted with [`SmtpSink::refuse_next`]).
    pub fn refuse_always(&self, stage: SmtpStage, code: u16) {
        *self.inner.always.lock() = Some(Fault { stage, code });
    }

    /// Accepts everything again.
    pub fn accept_all(&self) {
        self.inner.next.lock().clear();
        *self.inner.always.lock() = None;
    }

    /// Sessions opened so far (accepted or refused).
    #[must_use]
    pub fn sessions(&self) -> usize {
        self.inner.sessions.load(Ordering::SeqCst)
    }

    /// Every message accepted so far.
    #[must_use]
    pub fn messages(&self) -> Vec<SmtpMessage> {
        self.inner.messages.lock().clone()
    }

    /// Waits until at least `n` messages were accepted and returns them all.
    ///
    /// # Panics
    /// When fewer than `n` arrive within `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SmtpMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.inner.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            {
                let messages = self.inner.messages.lock();
                if messages.len() >= n {
                    return messages.clone();
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let got = self.inner.messages.lock().len();
                panic!("expected {n} mails within {timeout:?}, got {got}");
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one CRLF- or LF-terminated line (without it); `None` at EOF or past
/// [`MAX_LINE`].
async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *r).take(MAX_LINE).read_until(b'\n', &mut buf).await?;
    if n == 0 || !buf.ends_with(b"\n") {
        return Ok(None);
    }
    buf.pop();
    if buf.ends_with(b"\r") {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The address inside `<…>` after `MAIL FROM:` / `RCPT TO:`.
fn path_of(arg: &str) -> String {
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or_default().to_owned(),
    }
}

/// `AUTH PLAIN` credentials: `authzid \0 user \0 password`, base64.
fn plain_credentials(b64: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let mut parts = raw.split(|b| *b == 0).skip(1);
    let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let pass = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((user, pass))
}

fn decode_b64(text: &str) -> String {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

async fn session(stream: TcpStream, inner: &Inner) -> std::io::Result<()> {
    inner.sessions.fetch_add(1, Ordering::SeqCst);
    let fault = inner.next.lock().pop_front().or(*inner.always.lock());
    let refuse = |stage: SmtpStage| fault.filter(|f| f.stage == stage).map(|f| f.code);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    if let Some(code) = refuse(SmtpStage::Greeting) {
        write
            .write_all(format!("{code} sink refuses service\r\n").as_bytes())
            .await?;
        return write.shutdown().await;
    }
    write
        .write_all(b"220 ordermon-sink ESMTP ready\r\n")
        .await?;
    let mut helo = String::new();
    let mut auth: Option<(String, String)> = None;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    while let Some(line) = read_line(&mut read).await? {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_owned()),
            None => (line.trim().to_ascii_uppercase(), String::new()),
        };
        let reply: String = match verb.as_str() {
            "EHLO" => {
                helo = arg;
                "250-ordermon-sink\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760\r\n"
                    .to_owned()
            }
            "HELO" => {
                helo = arg;
                "250 ordermon-sink\r\n".to_owned()
            }
            "AUTH" => {
                let (mech, initial) = arg.split_once(' ').unwrap_or((arg.as_str(), ""));
                match mech.to_ascii_uppercase().as_str() {
                    "PLAIN" => {
                        let b64 = if initial.is_empty() {
                            write.write_all(b"334 \r\n").await?;
                            read_line(&mut read).await?.unwrap_or_default()
                        } else {
                            initial.to_owned()
                        };
                        auth = plain_credentials(&b64);
                    }
                    "LOGIN" => {
                        write.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                        let user = decode_b64(&read_line(&mut read).await?.unwrap_or_default());
                        write.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                        let pass = decode_b64(&read_line(&mut read).await?.unwrap_or_default());
                        auth = Some((user, pass));
                    }
                    _ => {}
                }
                if auth.is_some() {
                    "235 2.7.0 authenticated\r\n".to_owned()
                } else {
                    "504 5.5.4 unrecognized authentication\r\n".to_owned()
                }
            }
            "MAIL" => match refuse(SmtpStage::MailFrom) {
                Some(code) => format!("{code} sender refused by the sink\r\n"),
                None => {
                    mail_from = Some(path_of(&arg));
                    rcpt_to.clear();
                    "250 2.1.0 ok\r\n".to_owned()
                }
            },
            "RCPT" if mail_from.is_none() => "503 5.5.1 MAIL first\r\n".to_owned(),
            "RCPT" => match refuse(SmtpStage::RcptTo) {
                Some(code) => format!("{code} recipient refused by the sink\r\n"),
                None => {
                    rcpt_to.push(path_of(&arg));
                    "250 2.1.5 ok\r\n".to_owned()
                }
            },
            "DATA" if rcpt_to.is_empty() => "503 5.5.1 RCPT first\r\n".to_owned(),
            "DATA" => {
                write
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let Some(data) = read_data(&mut read).await? else {
                    return Ok(());
                };
                match refuse(SmtpStage::Data) {
                    Some(code) => format!("{code} message refused by the sink\r\n"),
                    None => {
                        inner.messages.lock().push(SmtpMessage {
                            helo: helo.clone(),
                            auth: auth.clone(),
                            mail_from: mail_from.take().unwrap_or_default(),
                            rcpt_to: std::mem::take(&mut rcpt_to),
                            data,
                        });
                        inner.arrived.notify_waiters();
                        "250 2.0.0 queued\r\n".to_owned()
                    }
                }
            }
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                "250 2.0.0 ok\r\n".to_owned()
            }
            "NOOP" => "250 2.0.0 ok\r\n".to_owned(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return write.shutdown().await;
            }
            _ => "502 5.5.2 command not implemented\r\n".to_owned(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// The message after `DATA`, up to the lone `.`, dot-unstuffed; `None` when
/// the client hangs up first or sends too much.
async fn read_data<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<String>> {
    let mut data = String::new();
    while let Some(line) = read_line(r).await? {
        if line == "." {
            return Ok(Some(data));
        }
        let line = line.strip_prefix('.').unwrap_or(&line);
        data.push_str(line);
        data.push_str("\r\n");
        if data.len() > MAX_MESSAGE {
            return Ok(None);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_credentials_are_read() {
        assert_eq!(path_of("FROM:<a@b.example> BODY=8BITMIME"), "a@b.example");
        assert_eq!(path_of("TO:<ops@x>"), "ops@x");
        let b64 = STANDARD.encode(b"\0user\0pw");
        assert_eq!(
            plain_credentials(&b64),
            Some(("user".to_owned(), "pw".to_owned()))
        );
    }
}
