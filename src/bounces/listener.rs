//! The inbound SMTP or LMTP listener inside `tidings serve`: where a front MTA's transport map, or the bounce
//! domain's MX records, deliver reports.
//!
//! Commands and message data are parsed by `smtp-proto` (Stalwart's SMTP/LMTP parser: RFC 5321 commands with
//! every registered extension's parameters, dot-unstuffing, and a discarding receiver for oversized data), and
//! this file keeps the small session state around it. It is never an open relay: a recipient must be a valid
//! signed return path or the complaint address (550 5.1.1 otherwise). A message over the size limit gets 552; a
//! client over its connection or rate limit gets 421 or 451; a session past 10 errors (refused recipients and
//! commands out of sequence included, across greetings) gets 421 and is closed; a report the database cannot
//! take gets 451, so the sender keeps it and tries again. 250 means the report is committed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver, RequestReceiver};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Intake, Pipeline, Source};
use crate::configuration::InboundProtocol;

/// Recipients per message at most (a report has one; a front MTA may batch a few).
const MAX_RECIPIENTS: usize = 50;
/// Protocol errors tolerated in one session before it is closed.
const MAX_ERRORS: u32 = 10;

/// The listener's limits, from `[bounces]`.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub per_client_per_minute: u32,
    pub idle_timeout: Duration,
}

/// A bound listener, ready to serve.
pub struct BounceListener {
    listener: TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    pipeline: Arc<Pipeline>,
    intake: Intake,
    protocol: InboundProtocol,
    limits: ListenerLimits,
    connections: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    rate: DefaultKeyedRateLimiter<IpAddr>,
}

impl BounceListener {
    /// Binds `address` (port 0 in tests).
    pub async fn bind(
        address: &str,
        pipeline: Arc<Pipeline>,
        intake: Intake,
        protocol: InboundProtocol,
        limits: ListenerLimits,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(address).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for reports on {address} (bounces.listen / TIDINGS_BOUNCES__LISTEN): {e}")
        })?;
        let per_minute = NonZeroU32::new(limits.per_client_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let shared = Arc::new(Shared {
            pipeline,
            intake,
            protocol,
            limits,
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            per_client: Mutex::new(HashMap::new()),
            rate: RateLimiter::keyed(Quota::per_minute(per_minute)),
        });
        Ok(Self { listener, shared })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` is cancelled, then tells open sessions to go (421) and waits for them.
    pub async fn serve(self, stop: CancellationToken) {
        let tracker = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = stop.cancelled() => break,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "the report listener cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let shared = self.shared.clone();
            let stop = stop.clone();
            tracker.spawn(async move { shared.admit(stream, peer.ip(), stop).await });
        }
        tracker.close();
        tracker.wait().await;
    }
}

impl Shared {
    /// Applies the connection limits, then runs the session.
    async fn admit(self: Arc<Self>, mut stream: TcpStream, client: IpAddr, stop: CancellationToken) {
        let _ = stream.set_nodelay(true);
        let Ok(_permit) = self.connections.clone().try_acquire_owned() else {
            let _ = stream.write_all(b"421 4.7.0 Too many connections, try again later\r\n").await;
            return;
        };
        let admitted = {
            let mut per_client = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
            let count = per_client.entry(client).or_insert(0);
            if *count >= self.limits.max_connections_per_client {
                false
            } else {
                *count += 1;
                true
            }
        };
        if !admitted {
            let _ = stream.write_all(b"421 4.7.0 Too many connections from your address, try again later\r\n").await;
            return;
        }
        let mut session = Session { shared: &self, client, stream, state: State::default() };
        if let Err(e) = session.run(&stop).await {
            tracing::debug!(error = %e, "a report session ended with an error");
        }
        let mut per_client = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = per_client.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                per_client.remove(&client);
            }
        }
    }
}

#[derive(Default)]
struct State {
    greeted: bool,
    mail: bool,
    recipients: Vec<String>,
    errors: u32,
}

struct Session<'a> {
    shared: &'a Shared,
    client: IpAddr,
    stream: TcpStream,
    state: State,
}

/// What the session does after a command.
enum Next {
    Command,
    Data,
    Quit,
}

impl Session<'_> {
    async fn run(&mut self, stop: &CancellationToken) -> std::io::Result<()> {
        let name = self.shared.pipeline.bounce.as_ref().map_or("localhost", |b| b.domain()).to_owned();
        let protocol = match self.shared.protocol {
            InboundProtocol::Smtp => "ESMTP",
            InboundProtocol::Lmtp => "LMTP",
        };
        self.reply(&format!("220 {name} {protocol} Tidings reports\r\n")).await?;
        let mut buffer = vec![0u8; 16 * 1024];
        let mut commands = RequestReceiver::default();
        let mut data: Option<Data> = None;
        loop {
            let read = tokio::select! {
                read = tokio::time::timeout(self.shared.limits.idle_timeout, self.stream.read(&mut buffer)) => read,
                () = stop.cancelled() => {
                    return self.reply("421 4.3.2 Shutting down, try again later\r\n").await;
                }
            };
            let count = match read {
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(count)) => count,
                Ok(Err(e)) => return Err(e),
                Err(_) => return self.reply("421 4.4.2 Idle for too long, closing\r\n").await,
            };
            let mut bytes = buffer[..count].iter();
            loop {
                if let Some(message) = data.as_mut() {
                    if !message.ingest(&mut bytes, self.shared.pipeline.max_message_bytes()) {
                        break;
                    }
                    let message = data.take().unwrap_or_else(Data::new);
                    self.finish_data(message).await?;
                    continue;
                }
                if bytes.as_slice().is_empty() {
                    break;
                }
                let request = match commands.ingest(&mut bytes) {
                    Ok(request) => request.into_owned(),
                    Err(ProtoError::NeedsMoreData { .. }) => break,
                    Err(error) => {
                        self.refuse(&error).await?;
                        if self.state.errors > MAX_ERRORS {
                            return self.reply("421 4.7.0 Too many errors, closing\r\n").await;
                        }
                        continue;
                    }
                };
                match self.command(request).await? {
                    Next::Command => {}
                    Next::Data => data = Some(Data::new()),
                    Next::Quit => return Ok(()),
                }
                // Refused recipients and commands out of sequence count too: a client guessing return paths
                // is cut off after a few, and a new greeting does not forgive them.
                if self.state.errors > MAX_ERRORS {
                    return self.reply("421 4.7.0 Too many errors, closing\r\n").await;
                }
            }
        }
    }

    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        self.stream.write_all(text.as_bytes()).await
    }

    async fn refuse(&mut self, error: &ProtoError) -> std::io::Result<()> {
        self.state.errors += 1;
        let text = match error {
            ProtoError::UnknownCommand => "500 5.5.1 Unknown command\r\n",
            ProtoError::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax\r\n",
            ProtoError::InvalidRecipientAddress => "501 5.1.3 Bad recipient address syntax\r\n",
            ProtoError::ResponseTooLong => "500 5.5.6 Line too long\r\n",
            _ => "501 5.5.4 Syntax error in parameters\r\n",
        };
        self.reply(text).await
    }

    async fn command(&mut self, request: Request<String>) -> std::io::Result<Next> {
        let lmtp = self.shared.protocol == InboundProtocol::Lmtp;
        let max = self.shared.pipeline.max_message_bytes();
        match request {
            Request::Ehlo { .. } | Request::Helo { .. } if lmtp => {
                self.state.errors += 1;
                self.reply("500 5.5.1 This is an LMTP server: say LHLO\r\n").await?;
            }
            Request::Lhlo { .. } if !lmtp => {
                self.state.errors += 1;
                self.reply("500 5.5.1 This is an SMTP server: say EHLO\r\n").await?;
            }
            Request::Helo { .. } => {
                self.state = State { greeted: true, errors: self.state.errors, ..State::default() };
                self.reply("250 Hello\r\n").await?;
            }
            Request::Ehlo { .. } | Request::Lhlo { .. } => {
                self.state = State { greeted: true, errors: self.state.errors, ..State::default() };
                let text = format!(
                    "250-Hello\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE {max}\r\n"
                );
                self.reply(&text).await?;
            }
            Request::Mail { from } => {
                if !self.state.greeted {
                    self.state.errors += 1;
                    self.reply("503 5.5.1 Say hello first\r\n").await?;
                } else if self.state.mail {
                    self.state.errors += 1;
                    self.reply("503 5.5.1 Nested MAIL command\r\n").await?;
                } else if from.size > max {
                    self.reply("552 5.3.4 Message too big for this system\r\n").await?;
                } else if self.shared.rate.check_key(&self.client).is_err() {
                    self.reply("451 4.7.1 Too many reports from your address, try again later\r\n").await?;
                } else {
                    self.state.mail = true;
                    self.state.recipients.clear();
                    self.reply("250 2.1.0 OK\r\n").await?;
                }
            }
            Request::Rcpt { to } => {
                if !self.state.mail {
                    self.state.errors += 1;
                    self.reply("503 5.5.1 Need MAIL before RCPT\r\n").await?;
                } else if self.state.recipients.len() >= MAX_RECIPIENTS {
                    self.reply("452 4.5.3 Too many recipients\r\n").await?;
                } else if self.shared.pipeline.accepts_recipient(&to.address) {
                    self.state.recipients.push(to.address);
                    self.reply("250 2.1.5 OK\r\n").await?;
                } else {
                    self.state.errors += 1;
                    self.reply("550 5.1.1 No such recipient here\r\n").await?;
                }
            }
            Request::Data => {
                if !self.state.mail || self.state.recipients.is_empty() {
                    self.state.errors += 1;
                    self.reply("503 5.5.1 Need a valid recipient before DATA\r\n").await?;
                } else {
                    self.reply("354 Send the report, end with <CRLF>.<CRLF>\r\n").await?;
                    return Ok(Next::Data);
                }
            }
            Request::Rset => {
                self.state = State { greeted: self.state.greeted, errors: self.state.errors, ..State::default() };
                self.reply("250 2.0.0 OK\r\n").await?;
            }
            Request::Noop { .. } => self.reply("250 2.0.0 OK\r\n").await?,
            Request::Vrfy { .. } => self.reply("252 2.5.2 Cannot verify\r\n").await?,
            Request::Quit => {
                self.reply("221 2.0.0 Bye\r\n").await?;
                return Ok(Next::Quit);
            }
            _ => {
                self.state.errors += 1;
                self.reply("502 5.5.1 Command not implemented\r\n").await?;
            }
        }
        Ok(Next::Command)
    }

    /// The message is in: prepare, commit, and answer once (SMTP) or once per recipient (LMTP).
    async fn finish_data(&mut self, data: Data) -> std::io::Result<()> {
        let recipients = std::mem::take(&mut self.state.recipients);
        self.state.mail = false;
        let reply = if data.oversized {
            "552 5.3.4 Message too big for this system\r\n".to_owned()
        } else {
            let source = match self.shared.protocol {
                InboundProtocol::Smtp => Source::Smtp,
                InboundProtocol::Lmtp => Source::Lmtp,
            };
            let pipeline = self.shared.pipeline.clone();
            let message = data.message;
            let rcpts = recipients.clone();
            let prepared = tokio::task::spawn_blocking(move || pipeline.prepare(&message, &rcpts, source)).await;
            match prepared {
                Ok(report) => match self.shared.intake.submit(report).await {
                    Ok(applied) => format!("250 2.0.0 Report {} stored\r\n", applied.report_id),
                    Err(_) => "451 4.3.0 Cannot store the report now, try again later\r\n".to_owned(),
                },
                Err(_) => "451 4.3.0 Cannot read the report now, try again later\r\n".to_owned(),
            }
        };
        let count = match self.shared.protocol {
            InboundProtocol::Smtp => 1,
            InboundProtocol::Lmtp => recipients.len().max(1),
        };
        for _ in 0..count {
            self.reply(&reply).await?;
        }
        Ok(())
    }
}

/// A message being received: kept until it passes the size limit, then only read to its end and dropped.
struct Data {
    receiver: DataReceiver,
    discard: Option<DummyDataReceiver>,
    message: Vec<u8>,
    oversized: bool,
}

impl Data {
    fn new() -> Self {
        Self { receiver: DataReceiver::new(), discard: None, message: Vec::new(), oversized: false }
    }

    /// Takes what `bytes` holds of the message; true at its final dot.
    fn ingest(&mut self, bytes: &mut std::slice::Iter<'_, u8>, max: usize) -> bool {
        if let Some(discard) = self.discard.as_mut() {
            return discard.ingest(bytes);
        }
        let done = self.receiver.ingest(bytes, &mut self.message);
        if !done && self.message.len() > max {
            self.oversized = true;
            self.message = Vec::new();
            let mut discard = DummyDataReceiver::new_data(&self.receiver);
            let done = discard.ingest(bytes);
            self.discard = Some(discard);
            return done;
        }
        if done && self.message.len() > max {
            self.oversized = true;
            self.message = Vec::new();
        }
        done
    }
}
