//! An in-process SMTP server for integration tests. It owns a listener on a free
//! loopback port, speaks enough ESMTP for lettre 0.11 (no TLS), records every
//! envelope, message and command it sees, and injects faults (error replies,
//! dropped connections, stalls, refusing connections) that tests switch while it runs.
//!
//! Everything a session records is recorded *before* the reply that reveals it is
//! written, so a test may inspect the server as soon as its client call returns.

// A test binary uses only part of this helper; the rest must not fail the build.
#![allow(dead_code)]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The largest message accepted, as advertised with `SIZE`.
pub const MAX_MESSAGE_BYTES: usize = 52_428_800;
/// The longest command line kept; RFC 5321 asks for 512, so this is generous.
const MAX_COMMAND_LINE: usize = 1000;
/// The longest message line kept. RFC 5322 says 998, but senders of long HTML break it.
const MAX_DATA_LINE: usize = 1 << 20;
/// Recipients per transaction, so a looping client cannot grow the envelope forever.
const MAX_RECIPIENTS: usize = 1000;

/// One message the server acknowledged (or, in `dropped_after_data`, received but never acknowledged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The reverse path without angle brackets; empty for the null sender `<>`.
    pub mail_from: String,
    /// Accepted recipients in the order given, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message content with dot-stuffing undone, ending with the CRLF before the final dot.
    pub data: Vec<u8>,
}

impl ReceivedMessage {
    /// Parses the content as an RFC 5322 message, so tests can check headers and bodies.
    pub fn parsed(&self) -> Option<mail_parser::Message<'_>> {
        mail_parser::MessageParser::default().parse(&self.data)
    }
}

/// The SMTP step a fault rule watches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `EHLO` or `HELO`.
    Ehlo,
    Mail,
    Rcpt,
    /// The `DATA` command itself, before the 354 reply.
    Data,
    /// The final dot, after the whole message content has arrived.
    DataEnd,
    Quit,
    Rset,
}

/// When a fault rule fires. Rules only see commands that would otherwise succeed.
#[derive(Clone)]
pub enum Trigger {
    Command(Verb),
    /// A `RCPT` whose address (without brackets) satisfies the predicate. The predicate runs under
    /// the server's lock, so it must not call back into the [`SmtpServer`].
    RcptMatching(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Trigger {
    /// Builds a `RcptMatching` trigger without spelling out the `Arc`.
    pub fn rcpt_matching(predicate: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self::RcptMatching(Arc::new(predicate))
    }

    fn matches(&self, verb: Verb, rcpt: Option<&str>) -> bool {
        match self {
            Self::Command(wanted) => *wanted == verb,
            Self::RcptMatching(predicate) => rcpt.is_some_and(|address| predicate(address)),
        }
    }
}

impl fmt::Debug for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command(verb) => f.debug_tuple("Command").field(verb).finish(),
            Self::RcptMatching(_) => f.write_str("RcptMatching(..)"),
        }
    }
}

/// What a fault rule does instead of the normal successful reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Replies with this code and text. Codes of 400 and above reject the command (421 also
    /// closes the connection, as real servers do); lower codes replace the success reply.
    Reply(u16, String),
    /// Closes the connection without replying. On `DataEnd` the message goes to `dropped_after_data`.
    Drop,
    /// Waits this long, then carries on normally.
    Stall(Duration),
    /// Waits until the test calls [`SmtpServer::release_stalls`], then carries on normally.
    StallUntilReleased,
}

impl Action {
    pub fn reply(code: u16, text: impl Into<String>) -> Self {
        Self::Reply(code, text.into())
    }
}

/// A fault rule: `action` happens `when` the trigger matches, `times` times (`None` = always).
#[derive(Clone, Debug)]
pub struct Fault {
    pub when: Trigger,
    pub action: Action,
    pub times: Option<usize>,
}

impl Fault {
    /// A rule that fires every time; chain [`Fault::times`] to limit it.
    pub fn new(when: Trigger, action: Action) -> Self {
        Self { when, action, times: None }
    }

    pub fn times(self, times: usize) -> Self {
        Self { times: Some(times), ..self }
    }
}

#[derive(Default)]
struct State {
    messages: Vec<ReceivedMessage>,
    dropped_after_data: Vec<ReceivedMessage>,
    commands: Vec<String>,
    connections: usize,
    faults: Vec<Fault>,
    refusing: bool,
    auth: bool,
    /// EHLO does not offer PIPELINING.
    no_pipelining: bool,
    /// Commands read while the client's next command had already arrived (sent without waiting for a reply).
    pipelined: usize,
}

/// State shared by the handle and all session tasks. The mutex is never held across an await.
struct Shared {
    state: Mutex<State>,
    /// Counts accepted messages, so waiters wake on change instead of polling.
    accepted: watch::Sender<usize>,
    /// Bumped by `release_stalls`; stalled sessions wait for the next bump.
    releases: watch::Sender<u64>,
    /// Sessions currently waiting in `StallUntilReleased`.
    stalled: watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not turn every later call into a second panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Finds the first rule matching this step, uses up one of its firings and returns its action.
    fn take_action(&self, verb: Verb, rcpt: Option<&str>) -> Option<Action> {
        let mut state = self.lock();
        let index = state.faults.iter().position(|fault| fault.times != Some(0) && fault.when.matches(verb, rcpt))?;
        let fault = &mut state.faults[index];
        let action = fault.action.clone();
        if let Some(left) = fault.times.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                state.faults.remove(index);
            }
        }
        Some(action)
    }

    async fn wait_for_release(&self) {
        // Subscribing first means a release that comes after we count as stalled is never missed.
        let mut releases = self.releases.subscribe();
        self.stalled.send_modify(|n| *n += 1);
        // The sender lives as long as `self`, so this cannot fail while we wait. Sessions are only
        // aborted together with the whole server, so nobody can miss the decrement.
        let _ = releases.changed().await;
        self.stalled.send_modify(|n| *n -= 1);
    }
}

/// A running test SMTP server; dropping it stops the listener and every session.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl SmtpServer {
    /// Binds a free port on 127.0.0.1 and starts serving. Panics only if binding fails.
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind test SMTP server on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of test SMTP server");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            accepted: watch::Sender::new(0),
            releases: watch::Sender::new(0),
            stalled: watch::Sender::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        SmtpServer { addr, shared, accept_task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the accepted messages, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.lock().messages.clone()
    }

    pub fn message_count(&self) -> usize {
        self.shared.lock().messages.len()
    }

    /// Waits until at least `n` messages were accepted, and returns them all.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Result<Vec<ReceivedMessage>, String> {
        match wait_for_count(&self.shared.accepted, n, timeout).await {
            Ok(()) => Ok(self.messages()),
            Err(arrived) => Err(format!("waited {timeout:?} for {n} messages, but {arrived} arrived")),
        }
    }

    /// Messages fully received when a `Drop` fault on `DataEnd` closed the connection unanswered.
    pub fn dropped_after_data(&self) -> Vec<ReceivedMessage> {
        self.shared.lock().dropped_after_data.clone()
    }

    /// TCP connections accepted so far, including those refused by `set_refusing(true)`.
    pub fn connection_count(&self) -> usize {
        self.shared.lock().connections
    }

    /// Every command line received, in arrival order across sessions, without the line ending.
    pub fn commands(&self) -> Vec<String> {
        self.shared.lock().commands.clone()
    }

    /// Adds a fault rule. Rules are tried in the order added; the first match wins.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Lets every session currently in `StallUntilReleased` carry on.
    pub fn release_stalls(&self) {
        self.shared.releases.send_modify(|generation| *generation += 1);
    }

    /// Waits until at least `n` sessions are held by `StallUntilReleased`, so a test knows its
    /// client is stuck exactly there before doing something else.
    pub async fn wait_for_stalled(&self, n: usize, timeout: Duration) -> Result<(), String> {
        let result = wait_for_count(&self.shared.stalled, n, timeout).await;
        result.map_err(|stalled| format!("waited {timeout:?} for {n} stalled sessions, but {stalled} stalled"))
    }

    /// While on, new connections get `421 4.3.2` and are closed; open sessions carry on.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.lock().refusing = refusing;
    }

    /// While on, EHLO advertises `AUTH PLAIN LOGIN` and any credentials are accepted.
    pub fn set_auth(&self, enabled: bool) {
        self.shared.lock().auth = enabled;
    }

    /// Whether EHLO offers PIPELINING (it does unless told otherwise).
    pub fn set_pipelining(&self, offered: bool) {
        self.shared.lock().no_pipelining = !offered;
    }

    /// How many commands arrived with the client's next one already behind them, unanswered: pipelined.
    pub fn pipelined_commands(&self) -> usize {
        self.shared.lock().pipelined
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // The session tasks live in a JoinSet owned by the accept task, so this aborts them too.
        self.accept_task.abort();
    }
}

/// Waits for a counter to reach `n` by watching it, not by polling; `Err` holds where it got to.
async fn wait_for_count(counter: &watch::Sender<usize>, n: usize, timeout: Duration) -> Result<(), usize> {
    let mut receiver = counter.subscribe();
    // `is_ok_and` drops the watch guard at once, so no session ever blocks on it.
    let reached = tokio::time::timeout(timeout, receiver.wait_for(|count| *count >= n)).await.is_ok_and(|r| r.is_ok());
    if reached { Ok(()) } else { Err(*receiver.borrow()) }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                // Accept errors (say, out of file descriptors) concern one connection only.
                let Ok((stream, _)) = accepted else { continue };
                // Each reply goes out as it is written, as a relay that offers PIPELINING makes sure of (it
                // flushes once the pipelined commands are answered): without it, Nagle's algorithm holds a
                // second small reply until the client's delayed ACK of the first, 40 ms per transaction.
                let _ = stream.set_nodelay(true);
                let refusing = {
                    let mut state = shared.lock();
                    state.connections += 1;
                    state.refusing
                };
                if refusing {
                    sessions.spawn(refuse(stream));
                } else {
                    sessions.spawn(Session::new(shared.clone(), stream).run());
                }
            }
            // Reaps finished sessions so the set does not grow with every connection.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

async fn refuse(mut stream: TcpStream) {
    // The client may already be gone; there is nobody to report that to.
    let _ = stream.write_all(b"421 4.3.2 service not available\r\n").await;
    let _ = stream.shutdown().await;
}

/// How a line read ended. `overflow` means bytes past the limit were discarded.
struct LineEnd {
    overflow: bool,
    crlf: bool,
}

/// Reads up to and including the next LF into `buf`, keeping at most `max` bytes so that a client
/// cannot make us buffer without bound. Returns `None` when the client closed mid-line or before it.
async fn read_line(reader: &mut BufReader<TcpStream>, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<LineEnd>> {
    buf.clear();
    let (mut overflow, mut previous) = (false, 0u8);
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(None);
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.map_or(available.len(), |i| i + 1)];
        let room = max.saturating_sub(buf.len());
        overflow |= chunk.len() > room;
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let end =
            newline.map(|i| LineEnd { overflow, crlf: if i == 0 { previous == b'\r' } else { chunk[i - 1] == b'\r' } });
        previous = chunk.last().copied().unwrap_or(previous);
        let consumed = chunk.len();
        reader.consume(consumed);
        if end.is_some() {
            return Ok(end);
        }
    }
}

/// Whether the session goes on after a command.
enum Flow {
    Continue,
    Close,
}

struct Session {
    shared: Arc<Shared>,
    io: BufReader<TcpStream>,
    line: Vec<u8>,
    greeted: bool,
    authenticated: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Session {
    fn new(shared: Arc<Shared>, stream: TcpStream) -> Self {
        let io = BufReader::new(stream);
        Session { shared, io, line: Vec::new(), greeted: false, authenticated: false, mail_from: None, rcpt_to: vec![] }
    }

    async fn run(mut self) {
        // An I/O error means the client went away, which clients may do at any time.
        let _ = self.serve().await;
    }

    /// Answers one command line at a time; pipelined commands wait in the buffer, so replies keep their order.
    async fn serve(&mut self) -> io::Result<()> {
        self.reply(220, "localhost ESMTP test server ready").await?;
        loop {
            let Some(end) = read_line(&mut self.io, &mut self.line, MAX_COMMAND_LINE).await? else {
                return Ok(());
            };
            let text = String::from_utf8_lossy(&self.line);
            let line = text.trim_end_matches(['\r', '\n']).to_owned();
            let pipelined = !self.io.buffer().is_empty();
            {
                let mut state = self.shared.lock();
                state.commands.push(line.clone());
                state.pipelined += usize::from(pipelined);
            }
            let flow =
                if end.overflow { self.reply(500, "5.5.2 line too long").await? } else { self.command(&line).await? };
            if let Flow::Close = flow {
                return self.io.get_mut().shutdown().await;
            }
        }
    }

    async fn command(&mut self, line: &str) -> io::Result<Flow> {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim();
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.hello(true).await,
            "HELO" => self.hello(false).await,
            "MAIL" => self.mail(arg).await,
            "RCPT" => self.rcpt(arg).await,
            "DATA" if !arg.is_empty() => self.reply(501, "5.5.4 DATA takes no arguments").await,
            "DATA" => self.data().await,
            "RSET" => Ok(match self.succeed(Verb::Rset, None, 250, "2.0.0 OK").await? {
                Some(flow) => flow,
                None => {
                    self.reset();
                    Flow::Continue
                }
            }),
            "NOOP" => self.reply(250, "2.0.0 OK").await,
            "VRFY" => self.reply(252, "2.5.0 cannot verify, but will accept the message").await,
            "QUIT" => self.succeed(Verb::Quit, None, 221, "2.0.0 bye").await.map(|_| Flow::Close),
            "AUTH" => self.auth(arg).await,
            "STARTTLS" => self.reply(502, "5.5.1 not offered").await,
            _ => self.reply(500, "5.5.2 command not recognized").await,
        }
    }

    async fn hello(&mut self, extended: bool) -> io::Result<Flow> {
        let (auth, pipelining) = {
            let state = self.shared.lock();
            (if state.auth { "\nAUTH PLAIN LOGIN" } else { "" }, if state.no_pipelining { "" } else { "\nPIPELINING" })
        };
        let text = if extended {
            format!("localhost{pipelining}\n8BITMIME\nSMTPUTF8{auth}\nSIZE {MAX_MESSAGE_BYTES}")
        } else {
            "localhost".to_owned()
        };
        if let Some(flow) = self.succeed(Verb::Ehlo, None, 250, &text).await? {
            return Ok(flow);
        }
        self.greeted = true;
        self.reset();
        Ok(Flow::Continue)
    }

    async fn mail(&mut self, arg: &str) -> io::Result<Flow> {
        if !self.greeted {
            return self.reply(503, "5.5.1 send EHLO or HELO first").await;
        }
        if self.mail_from.is_some() {
            return self.reply(503, "5.5.1 nested MAIL command").await;
        }
        let Some((address, params)) = parse_path(arg, "FROM:") else {
            return self.reply(501, "5.5.4 syntax: MAIL FROM:<address>").await;
        };
        for param in params.split_ascii_whitespace() {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            let problem = match key.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<usize>() {
                    Ok(size) if size <= MAX_MESSAGE_BYTES => None,
                    Ok(_) => Some((552, "5.3.4 message size exceeds fixed maximum")),
                    Err(_) => Some((501, "5.5.4 bad SIZE value")),
                },
                "BODY" if ["7BIT", "8BITMIME"].iter().any(|body| value.eq_ignore_ascii_case(body)) => None,
                "SMTPUTF8" if value.is_empty() => None,
                _ => Some((555, "5.5.4 unsupported MAIL parameter")),
            };
            if let Some((code, text)) = problem {
                return self.reply(code, text).await;
            }
        }
        if let Some(flow) = self.succeed(Verb::Mail, None, 250, "2.1.0 sender OK").await? {
            return Ok(flow);
        }
        self.mail_from = Some(address.to_owned());
        Ok(Flow::Continue)
    }

    async fn rcpt(&mut self, arg: &str) -> io::Result<Flow> {
        if self.mail_from.is_none() {
            return self.reply(503, "5.5.1 send MAIL first").await;
        }
        let (address, params) = match parse_path(arg, "TO:") {
            Some((address, params)) if !address.is_empty() => (address.to_owned(), params),
            _ => return self.reply(501, "5.5.4 syntax: RCPT TO:<address>").await,
        };
        if !params.is_empty() {
            return self.reply(555, "5.5.4 unsupported RCPT parameter").await;
        }
        if self.rcpt_to.len() >= MAX_RECIPIENTS {
            return self.reply(452, "4.5.3 too many recipients").await;
        }
        if let Some(flow) = self.succeed(Verb::Rcpt, Some(&address), 250, "2.1.5 recipient OK").await? {
            return Ok(flow);
        }
        self.rcpt_to.push(address);
        Ok(Flow::Continue)
    }

    async fn data(&mut self) -> io::Result<Flow> {
        // A fault comes first, so a test can play a relay that takes DATA without a valid recipient.
        match self.fault(Verb::Data, None).await {
            Some(Action::Drop) => return Ok(Flow::Close),
            Some(Action::Reply(code, text)) if code >= 400 => return self.reject(code, &text).await,
            Some(Action::Reply(code, text)) => self.reply(code, &text).await.map(|_| ())?,
            _ if self.mail_from.is_none() || self.rcpt_to.is_empty() => {
                return self.reply(503, "5.5.1 send MAIL and RCPT first").await;
            }
            _ => self.reply(354, "end data with <CR><LF>.<CR><LF>").await.map(|_| ())?,
        }
        let Some(content) = self.read_content().await? else { return Ok(Flow::Close) };
        // The transaction ends with the final dot whatever happens next (RFC 5321 §4.1.1.4).
        let envelope = (self.mail_from.take().unwrap_or_default(), std::mem::take(&mut self.rcpt_to));
        let data = match content {
            Ok(data) => data,
            Err((code, text)) => return self.reply(code, text).await,
        };
        let message = ReceivedMessage { mail_from: envelope.0, rcpt_to: envelope.1, data };
        let (code, text) = match self.fault(Verb::DataEnd, None).await {
            Some(Action::Drop) => {
                self.shared.lock().dropped_after_data.push(message);
                return Ok(Flow::Close);
            }
            Some(Action::Reply(code, text)) if code >= 400 => return self.reject(code, &text).await,
            Some(Action::Reply(code, text)) => (code, text),
            _ => (250, "2.0.0 message accepted".to_owned()),
        };
        self.shared.lock().messages.push(message);
        self.shared.accepted.send_modify(|count| *count += 1);
        self.reply(code, &text).await
    }

    /// Reads message lines up to the final dot. Only CRLF ends a line, so a bare LF followed by a
    /// dot can neither end the message early nor lose a dot. Returns `None` if the client left,
    /// and the rejection reply if a line or the whole message was too large to keep.
    async fn read_content(&mut self) -> io::Result<Option<Result<Vec<u8>, (u16, &'static str)>>> {
        let (mut data, mut problem, mut at_line_start) = (Vec::new(), None, true);
        loop {
            let Some(end) = read_line(&mut self.io, &mut self.line, MAX_DATA_LINE).await? else { return Ok(None) };
            if at_line_start && self.line == b".\r\n" {
                return Ok(Some(problem.map_or(Ok(data), Err)));
            }
            let content = if at_line_start && self.line.first() == Some(&b'.') { &self.line[1..] } else { &self.line };
            if end.overflow {
                problem = problem.or(Some((554, "5.6.0 message line longer than 1 MiB")));
            } else if data.len() + content.len() > MAX_MESSAGE_BYTES {
                problem = problem.or(Some((552, "5.3.4 message size exceeds fixed maximum")));
            }
            if problem.is_none() {
                data.extend_from_slice(content);
            } else {
                data = Vec::new();
            }
            at_line_start = end.crlf;
        }
    }

    /// Runs the fault rules for a command about to succeed, then sends its reply: the normal one, or
    /// a rule's substitute. Returns `None` if the command takes effect, or how the session goes on
    /// if a rule rejected it or dropped the connection.
    async fn succeed(&mut self, verb: Verb, rcpt: Option<&str>, code: u16, text: &str) -> io::Result<Option<Flow>> {
        match self.fault(verb, rcpt).await {
            Some(Action::Drop) => Ok(Some(Flow::Close)),
            Some(Action::Reply(code, text)) if code >= 400 => self.reject(code, &text).await.map(Some),
            Some(Action::Reply(code, text)) => self.reply(code, &text).await.map(|_| None),
            _ => self.reply(code, text).await.map(|_| None),
        }
    }

    /// Returns the matching rule's action after serving any stall, which then counts as no fault.
    async fn fault(&self, verb: Verb, rcpt: Option<&str>) -> Option<Action> {
        match self.shared.take_action(verb, rcpt)? {
            Action::Stall(duration) => tokio::time::sleep(duration).await,
            Action::StallUntilReleased => self.shared.wait_for_release().await,
            action => return Some(action),
        }
        None
    }

    async fn reject(&mut self, code: u16, text: &str) -> io::Result<Flow> {
        self.reply(code, text).await?;
        Ok(if code == 421 { Flow::Close } else { Flow::Continue })
    }

    async fn auth(&mut self, arg: &str) -> io::Result<Flow> {
        if !self.shared.lock().auth {
            return self.reply(502, "5.5.1 AUTH not offered").await;
        }
        if !self.greeted || self.mail_from.is_some() || self.authenticated {
            return self.reply(503, "5.5.1 AUTH not allowed now").await;
        }
        let mut words = arg.split_ascii_whitespace();
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        // Base64 prompts: "" asks for PLAIN's response, the others say "Username:" and "Password:".
        let prompts: &[&str] = match (mechanism.as_str(), words.next().is_some()) {
            ("PLAIN", true) => &[],
            ("PLAIN", false) => &[""],
            ("LOGIN", true) => &["UGFzc3dvcmQ6"],
            ("LOGIN", false) => &["VXNlcm5hbWU6", "UGFzc3dvcmQ6"],
            _ => return self.reply(504, "5.5.4 unrecognized authentication type").await,
        };
        for prompt in prompts {
            self.reply(334, prompt).await?;
            let Some(end) = read_line(&mut self.io, &mut self.line, MAX_COMMAND_LINE).await? else {
                return Ok(Flow::Close);
            };
            if end.overflow || self.line.starts_with(b"*") {
                return self.reply(501, "5.7.0 authentication cancelled").await;
            }
        }
        self.authenticated = true;
        self.reply(235, "2.7.0 authentication succeeded").await
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    /// Sends a reply; each `\n` in `text` starts another line of a multi-line reply.
    async fn reply(&mut self, code: u16, text: &str) -> io::Result<Flow> {
        let last = text.split('\n').count() - 1;
        let lines = text.split('\n').enumerate();
        let reply: String =
            lines.map(|(i, line)| format!("{code}{}{line}\r\n", if i < last { '-' } else { ' ' })).collect();
        self.io.get_mut().write_all(reply.as_bytes()).await?;
        Ok(Flow::Continue)
    }
}

/// Splits `FROM:<a@b> PARAMS` (prefix matched case-insensitively) into the bare address and the parameters.
fn parse_path<'a>(arg: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((&rest[..end], rest[end + 1..].trim()))
}
