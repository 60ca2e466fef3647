//! The mailer through its public API: messages built from the real sample issue and decoded with mail-parser,
//! every SMTP fault of the test server mapped to its outcome, TLS and AUTH settings, the outbox, and DKIM
//! signatures checked by independent tools (Debian's python3-dkim and SpamAssassin).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use lettre::message::Mailbox;
use mail_parser::{MessageParser, MimeHeaders};
use secrecy::SecretString;
use tidings::domain::SubscriberEmail;
use tidings::mailer::{
    BuildError, BuiltMessage, DkimAlgorithm, DkimSigner, OutboxSender, Outgoing, SendOutcome, Sender, SmtpConfig,
    SmtpSender, SmtpTls, build,
};
use tidings::render::{Branding, Recipient, Templates, compile_issue, parse_issue};

use crate::helpers::smtp_server::{Action, Fault, SmtpServer, Trigger, Verb};

const SAMPLE: &str = include_str!("../../emails/issues/122.md");
const UNSUBSCRIBE: &str = "https://news.example.com/u/1.AbC-dEf_123";
const NAME: &str = "Zoë \"Zo\" O'Brien, Jr. 张";
const PASSWORD: &str = "correct-horse-battery-staple";

/// The sample issue personalised for [`NAME`]: (subject, html, text), rendered once for all tests.
fn sample_issue() -> &'static (String, String, String) {
    static SAMPLE_ISSUE: OnceLock<(String, String, String)> = OnceLock::new();
    SAMPLE_ISSUE.get_or_init(|| render_sample(NAME))
}

fn render_sample(name: &str) -> (String, String, String) {
    let branding = Branding {
        list_name: "So, what's up in China?".to_owned(),
        organization: "Example Insights Ltd".to_owned(),
        postal_address: "1 Example Road, 200000 Shanghai, China".to_owned(),
        sender_email: "digest@example.com".to_owned(),
    };
    let source = parse_issue("emails/issues/122.md", SAMPLE).expect("the sample issue parses");
    let issue = compile_issue(&Templates::embedded(), &source, &branding).expect("the sample issue compiles");
    let rate = [1, 2, 3, 4, 5].map(|stars| format!("https://news.example.com/rate/1.tok?stars={stars}"));
    let recipient = Recipient {
        name,
        unsubscribe_url: UNSUBSCRIBE,
        rate_urls: [&rate[0], &rate[1], &rate[2], &rate[3], &rate[4]],
        pixel_url: Some("https://news.example.com/o/1.tok"),
        view_url: "https://news.example.com/v/1.tok",
    };
    let email = issue.personalise(&recipient);
    (issue.subject().to_owned(), email.html(), email.text())
}

struct Parts {
    from: Mailbox,
    reply_to: Mailbox,
    to: SubscriberEmail,
    subject: String,
    html: String,
    text: String,
}

impl Parts {
    fn new(to: &str) -> Self {
        let (subject, html, text) = sample_issue().clone();
        Self {
            from: "What's up in China <digest@example.com>".parse().expect("mailbox"),
            reply_to: "Editors <editors@example.com>".parse().expect("mailbox"),
            to: SubscriberEmail::parse(to).expect("address"),
            subject: format!("{subject} – Ausgabe für Zoë"),
            html,
            text,
        }
    }

    fn outgoing<'a>(&'a self, message_id: &'a str) -> Outgoing<'a> {
        Outgoing {
            message_id,
            from: &self.from,
            reply_to: Some(&self.reply_to),
            to_email: &self.to,
            to_name: NAME,
            subject: &self.subject,
            date: "2026-12-07T08:00:00Z".parse().expect("timestamp"),
            list_id: "What's up in China <weekly.example.com>",
            unsubscribe_url: UNSUBSCRIBE,
            feedback_id: "122:weekly:tidings:example.com",
            html: &self.html,
            text: &self.text,
            is_test: false,
            bounce: None,
            eight_bit: true,
        }
    }

    fn build(&self, message_id: &str) -> BuiltMessage {
        build(&self.outgoing(message_id), None).expect("the message builds")
    }
}

fn plain_config(server: &SmtpServer) -> SmtpConfig {
    plain_config_for(server.port())
}

/// Plaintext to 127.0.0.1 at `port`, with short timeouts.
fn plain_config_for(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(10),
        hello_name: Some("tidings.test".to_owned()),
        ca_file: None,
    }
}

fn sender(server: &SmtpServer) -> SmtpSender {
    SmtpSender::new(plain_config(server)).expect("a plaintext sender to loopback")
}

fn header<'a>(message: &'a mail_parser::Message<'a>, name: &'static str) -> &'a str {
    message.header_raw(name).unwrap_or_else(|| panic!("no {name} header")).trim()
}

#[test]
fn the_sample_issue_with_long_signed_links_goes_as_8_bit_text_without_any_encoding() {
    // Links as long as a real deployment's: a long host name and a signed token each.
    let base = "https://newsletter.example-publishing-company.co.uk/tidings";
    let token = "AQIBAAL9oZHN-qdC0OPCswLTAB4fAQIBAAL9oZHN";
    let rate = [1, 2, 3, 4, 5].map(|stars| format!("{base}/r/{token}?stars={stars}"));
    let (unsubscribe, pixel, view) =
        (format!("{base}/u/{token}"), format!("{base}/o/{token}.gif"), format!("{base}/v/{token}"));
    let source = parse_issue("emails/issues/122.md", SAMPLE).expect("the sample issue parses");
    let branding = Branding {
        list_name: "So, what's up in China?".to_owned(),
        organization: "Example Insights Ltd".to_owned(),
        postal_address: "1 Example Road, 200000 Shanghai, China".to_owned(),
        sender_email: "digest@example.com".to_owned(),
    };
    let issue = compile_issue(&Templates::embedded(), &source, &branding).expect("the sample issue compiles");
    let long_name = "Maximiliane Alexandra von Hohenzollern-Sigmaringen";
    let recipient = Recipient {
        name: long_name,
        unsubscribe_url: &unsubscribe,
        rate_urls: [&rate[0], &rate[1], &rate[2], &rate[3], &rate[4]],
        pixel_url: Some(&pixel),
        view_url: &view,
    };
    let email = issue.personalise(&recipient);
    let (html, text) = (email.html(), email.text());
    let parts = Parts::new("zoe@example.org");
    let outgoing =
        Outgoing { html: &html, text: &text, unsubscribe_url: &unsubscribe, ..parts.outgoing("<122.1.x@example.com>") };
    let built = build(&outgoing, None).expect("a valid message");
    let raw = String::from_utf8_lossy(&built.bytes);
    // Quoted-printable would cost every message about a fifth of the daemon's CPU: each line fits as it is.
    assert!(!raw.to_ascii_lowercase().contains("quoted-printable"), "a part fell back to quoted-printable");
    assert!(built.bytes.split(|&b| b == b'\n').all(|line| line.len() <= 998), "a line is longer than 998 octets");
    let parsed = MessageParser::default().parse(&built.bytes).expect("mail-parser reads it");
    let arrived = parsed.body_html(0).expect("an HTML part");
    for link in rate.iter().chain([&unsubscribe, &pixel, &view]) {
        assert!(arrived.contains(link.as_str()), "{link} arrives whole");
    }
    assert!(arrived.contains(long_name), "the name arrives whole");
}

#[test]
fn a_built_message_carries_every_header_and_both_parts_text_first() {
    let parts = Parts::new("zoe@example.org");
    let built = parts.build("<122.4711.k3j2@example.com>");
    // For a relay that takes 8-bit bodies the parts go as they are; the headers are always 7-bit.
    let end_of_headers = built.bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a blank line ends the headers");
    assert!(built.bytes[..end_of_headers].is_ascii(), "headers are 7-bit");
    assert!(built.bytes.split(|&b| b == b'\n').all(|line| line.len() <= 998), "a line is longer than 998 octets");
    // For one that does not, everything is quoted-printable.
    let seven_bit = build(&Outgoing { eight_bit: false, ..parts.outgoing("<122.4711.k3j2@example.com>") }, None)
        .expect("a valid message");
    assert!(seven_bit.bytes.is_ascii(), "everything is encoded: the message is 7-bit");
    let decoded = MessageParser::default().parse(&seven_bit.bytes).expect("mail-parser reads it");
    assert_eq!(decoded.body_html(0), MessageParser::default().parse(&built.bytes).expect("parse").body_html(0));
    let message = MessageParser::default().parse(&built.bytes).expect("mail-parser reads it");
    assert_eq!(message.message_id(), Some("122.4711.k3j2@example.com"));
    assert_eq!(header(&message, "Message-ID"), "<122.4711.k3j2@example.com>");
    assert_eq!(message.date().map(|d| d.to_timestamp()), Some(1_796_630_400));
    assert_eq!(message.subject(), Some(parts.subject.as_str()));
    let to = message.to().and_then(|to| to.first()).expect("a To address");
    assert_eq!((to.name(), to.address()), (Some(NAME), Some("zoe@example.org")));
    let from = message.from().and_then(|from| from.first()).expect("a From address");
    assert_eq!((from.name(), from.address()), (Some("What's up in China"), Some("digest@example.com")));
    assert_eq!(header(&message, "From"), "\"What's up in China\" <digest@example.com>", "ASCII names are not base64");
    assert_eq!(message.reply_to().and_then(|r| r.first()).and_then(|r| r.address()), Some("editors@example.com"));
    assert_eq!(header(&message, "MIME-Version"), "1.0");
    assert_eq!(header(&message, "List-Id"), "What's up in China <weekly.example.com>");
    assert_eq!(header(&message, "List-Unsubscribe"), format!("<{UNSUBSCRIBE}>"));
    assert_eq!(header(&message, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    assert_eq!(header(&message, "Feedback-ID"), "122:weekly:tidings:example.com");
    assert_eq!(header(&message, "Precedence"), "bulk");
    for absent in ["Auto-Submitted", "X-Tidings-Test", "DKIM-Signature"] {
        assert!(message.header_raw(absent).is_none(), "unexpected {absent} header");
    }
    assert_eq!(
        (built.envelope.from().map(|a| a.to_string()), built.envelope.to().len()),
        (Some("digest@example.com".into()), 1)
    );
    let types: Vec<String> = message
        .parts
        .iter()
        .filter_map(|p| p.content_type())
        .map(|t| format!("{}/{}", t.ctype(), t.subtype().unwrap_or_default()))
        .collect();
    assert_eq!(types, ["multipart/alternative", "text/plain", "text/html"], "text first, HTML last");
    assert_eq!(message.body_text(0).as_deref(), Some(parts.text.replace('\n', "\r\n").as_str()));
    assert_eq!(message.body_html(0).as_deref(), Some(parts.html.replace('\n', "\r\n").as_str()));
}

#[test]
fn an_ascii_name_with_quotes_and_commas_arrives_intact() {
    let parts = Parts::new("ana@example.org");
    let name = r#"Ana "the reader" O'Neil, Esq. \o/"#;
    let built = build(&Outgoing { to_name: name, ..parts.outgoing("<n.1@example.com>") }, None).expect("builds");
    let message = MessageParser::default().parse(&built.bytes).expect("parses");
    assert_eq!(header(&message, "To"), r#""Ana \"the reader\" O'Neil, Esq. \\o/" <ana@example.org>"#);
    let to = message.to().and_then(|to| to.first()).expect("a To address");
    assert_eq!((to.name(), to.address()), (Some(name), Some("ana@example.org")));
}

#[test]
fn a_test_send_is_marked_in_a_header_and_in_the_subject() {
    let parts = Parts::new("zoe@example.org");
    let outgoing = Outgoing { is_test: true, ..parts.outgoing("<t.1@example.com>") };
    let built = build(&outgoing, None).expect("builds");
    let message = MessageParser::default().parse(&built.bytes).expect("parses");
    assert_eq!(header(&message, "X-Tidings-Test"), "yes");
    assert_eq!(message.subject(), Some(format!("[TEST] {}", parts.subject).as_str()));
}

#[test]
fn a_line_break_in_the_subject_or_the_name_is_refused_naming_the_header() {
    let parts = Parts::new("zoe@example.org");
    let subject = Outgoing { subject: "Issue 122\r\nBcc: everyone@example.com", ..parts.outgoing("<1@example.com>") };
    assert_eq!(build(&subject, None).unwrap_err(), BuildError::ControlCharacter { header: "Subject" });
    let name = Outgoing { to_name: "Zoë\nBcc: x@example.com", ..parts.outgoing("<1@example.com>") };
    let error = build(&name, None).unwrap_err();
    assert_eq!(error, BuildError::ControlCharacter { header: "To" });
    assert!(error.to_string().contains("the To header") && !error.to_string().contains("Zoë"), "{error}");
}

#[tokio::test]
async fn one_sender_sends_a_hundred_messages_over_one_connection() {
    let server = SmtpServer::start().await;
    let mut sender = sender(&server);
    let parts: Vec<Parts> = (0..100).map(|i| Parts::new(&format!("reader{i}@example.org"))).collect();
    let mut built = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let message = part.build(&format!("<122.{i}.x@example.com>"));
        let outcome = sender.send(&message).await;
        assert!(matches!(outcome, SendOutcome::Accepted { ref reply } if reply.starts_with("250 ")), "{outcome:?}");
        built.push(message);
    }
    sender.close().await;
    assert_eq!(server.connection_count(), 1);
    assert_eq!(server.commands().last().map(String::as_str), Some("QUIT"), "close() says goodbye");
    let received = server.messages();
    assert_eq!(received.len(), 100);
    for (i, (got, sent)) in received.iter().zip(&built).enumerate() {
        assert_eq!(
            (got.mail_from.as_str(), got.rcpt_to.clone()),
            ("digest@example.com", vec![format!("reader{i}@example.org")])
        );
        assert!(got.data == sent.bytes, "message {i} arrived altered");
    }
}

/// What a test expects of an outcome.
type Expected = fn(&SendOutcome) -> bool;

/// Sends one message into `fault`, then one more, which must succeed on the same sender.
async fn outcome_of(server: &SmtpServer, sender: &mut SmtpSender, fault: Fault) -> SendOutcome {
    let parts = Parts::new("zoe@example.org");
    server.inject(fault);
    let outcome = sender.send(&parts.build("<f.1@example.com>")).await;
    server.clear_faults();
    let next = sender.send(&parts.build("<f.2@example.com>")).await;
    assert!(next.is_accepted(), "after {outcome:?} the next send failed: {next:?}");
    outcome
}

#[tokio::test]
async fn each_fault_maps_to_its_outcome_and_the_next_send_succeeds_with_pipelining() {
    let server = SmtpServer::start().await;
    each_fault_maps_to_its_outcome(&server).await;
    // MAIL and RCPT of every transaction arrived with the next command behind them.
    assert!(server.pipelined_commands() >= 2 * 20, "{} commands pipelined", server.pipelined_commands());

    // A relay that refuses the recipient but then answers DATA with 354 waits for content that must not come:
    // the connection is dropped (no final dot, so nothing is delivered) and the refusal is the outcome.
    let connections = server.connection_count();
    server.inject(Fault::new(Trigger::Command(Verb::Rcpt), Action::reply(550, "5.1.1 no such user")).times(1));
    server.inject(Fault::new(Trigger::Command(Verb::Data), Action::reply(354, "go ahead")).times(1));
    let mut sender = sender(&server);
    let outcome = sender.send(&Parts::new("zoe@example.org").build("<p.1@example.com>")).await;
    assert!(matches!(outcome, SendOutcome::Bounce { code: 550, .. }), "{outcome:?}");
    let delivered = server.message_count();
    server.clear_faults();
    assert!(sender.send(&Parts::new("zoe@example.org").build("<p.2@example.com>")).await.is_accepted());
    assert_eq!(server.connection_count(), connections + 2, "the confused connection was replaced");
    assert_eq!(server.message_count(), delivered + 1, "only the second message was delivered");
}

#[tokio::test]
async fn each_fault_maps_to_its_outcome_and_the_next_send_succeeds_without_pipelining() {
    let server = SmtpServer::start().await;
    server.set_pipelining(false);
    each_fault_maps_to_its_outcome(&server).await;
    assert_eq!(server.pipelined_commands(), 0, "a relay that does not offer PIPELINING gets one command at a time");
}

async fn each_fault_maps_to_its_outcome(server: &SmtpServer) {
    let mut sender = sender(server);
    let reply = |verb, code, text: &str| Fault::new(Trigger::Command(verb), Action::reply(code, text)).times(1);
    let cases: Vec<(Fault, Expected)> = vec![
        (reply(Verb::Rcpt, 451, "requested action aborted: local error"), |o| {
            matches!(o, SendOutcome::Transient { code: Some(451), .. })
        }),
        (reply(Verb::Rcpt, 550, "5.1.1 no such user"), |o| {
            let reply = "550 5.1.1 no such user".to_owned();
            *o == SendOutcome::Bounce { code: 550, enhanced: "5.1.1".to_owned(), reply }
        }),
        (reply(Verb::Rcpt, 552, "5.2.2 mailbox full"), |o| matches!(o, SendOutcome::Transient { code: Some(552), .. })),
        (reply(Verb::Rcpt, 554, "5.6.0 message refused"), |o| matches!(o, SendOutcome::Rejected { code: 554, .. })),
        (reply(Verb::DataEnd, 554, "5.7.1 rejected as spam"), |o| matches!(o, SendOutcome::Policy { code: 554, .. })),
        (reply(Verb::DataEnd, 451, "4.7.1 rate limit exceeded"), |o| matches!(o, SendOutcome::Unavailable { .. })),
        (reply(Verb::Rcpt, 421, "4.3.2 shutting down"), |o| matches!(o, SendOutcome::Unavailable { .. })),
        (reply(Verb::Data, 421, "4.3.2 shutting down"), |o| matches!(o, SendOutcome::Unavailable { .. })),
        (Fault::new(Trigger::Command(Verb::Rcpt), Action::Drop).times(1), |o| {
            matches!(o, SendOutcome::Transient { code: None, .. })
        }),
        (Fault::new(Trigger::Command(Verb::Data), Action::Drop).times(1), |o| {
            matches!(o, SendOutcome::Transient { code: None, .. })
        }),
    ];
    for (fault, expected) in cases {
        let shown = format!("{fault:?}");
        let outcome = outcome_of(server, &mut sender, fault).await;
        assert!(expected(&outcome), "{shown} gave {outcome:?}");
    }
    assert!(server.dropped_after_data().is_empty(), "no fault above happened after the final dot");
}

#[tokio::test]
async fn a_connection_lost_after_the_final_dot_is_ambiguous() {
    let server = SmtpServer::start().await;
    let mut sender = sender(&server);
    let fault = Fault::new(Trigger::Command(Verb::DataEnd), Action::Drop).times(1);
    let outcome = outcome_of(&server, &mut sender, fault).await;
    assert!(matches!(outcome, SendOutcome::Ambiguous { .. }), "{outcome:?}");
    let dropped = server.dropped_after_data();
    assert_eq!(dropped.len(), 1, "the server had the whole message when the connection died");
    assert_eq!(dropped[0].parsed().and_then(|m| m.message_id().map(str::to_owned)).as_deref(), Some("f.1@example.com"));
}

#[tokio::test]
async fn a_reply_that_never_comes_is_transient_before_the_final_dot_and_ambiguous_after_it() {
    let server = SmtpServer::start().await;
    // The timeout is the event under test; it is short so the test stays quick, and nothing asserts on time.
    let config = SmtpConfig { command_timeout: Duration::from_millis(300), ..plain_config(&server) };
    let mut sender = SmtpSender::new(config).expect("sender");
    for (verb, ambiguous) in [(Verb::Rcpt, false), (Verb::DataEnd, true)] {
        let fault = Fault::new(Trigger::Command(verb), Action::StallUntilReleased).times(1);
        let outcome = outcome_of(&server, &mut sender, fault).await;
        match (ambiguous, &outcome) {
            (false, SendOutcome::Transient { code: None, reply }) => assert!(reply.contains("no reply"), "{reply}"),
            (true, SendOutcome::Ambiguous { reason }) => assert!(reason.contains("no reply"), "{reason}"),
            _ => panic!("a stall at {verb:?} gave {outcome:?}"),
        }
        server.release_stalls();
    }
}

#[tokio::test]
async fn a_relay_refusing_connections_is_unavailable_and_sending_resumes_when_it_accepts_again() {
    let server = SmtpServer::start().await;
    let mut sender = sender(&server);
    let parts = Parts::new("zoe@example.org");
    server.set_refusing(true);
    let refused = sender.send(&parts.build("<r.1@example.com>")).await;
    assert!(matches!(&refused, SendOutcome::Unavailable { reason } if reason.contains("421")), "{refused:?}");
    server.set_refusing(false);
    assert!(sender.send(&parts.build("<r.1@example.com>")).await.is_accepted());
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut nobody = SmtpSender::new(plain_config_for(closed_port)).expect("sender");
    let outcome = nobody.send(&parts.build("<r.2@example.com>")).await;
    assert!(matches!(outcome, SendOutcome::Unavailable { .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_refused_recipient_keeps_the_connection_and_an_idle_closed_one_is_replaced() {
    let server = SmtpServer::start().await;
    let mut sender = sender(&server);
    let fault = Fault::new(Trigger::Command(Verb::Rcpt), Action::reply(550, "5.1.1 no such user")).times(1);
    assert!(matches!(outcome_of(&server, &mut sender, fault).await, SendOutcome::Bounce { .. }));
    assert_eq!(server.connection_count(), 1, "RSET ended the refused transaction; the connection stayed");
    // A relay that closed the idle connection answers the next MAIL with 421: the sender reconnects once.
    server.inject(Fault::new(Trigger::Command(Verb::Mail), Action::reply(421, "4.4.2 idle timeout")).times(1));
    let outcome = sender.send(&Parts::new("zoe@example.org").build("<i.1@example.com>")).await;
    assert!(outcome.is_accepted(), "{outcome:?}");
    assert_eq!(server.connection_count(), 2);
}

#[tokio::test]
async fn tls_required_without_starttls_is_fatal_and_nothing_is_sent_in_plaintext() {
    let server = SmtpServer::start().await;
    let config = SmtpConfig { tls: SmtpTls::Required, ..plain_config(&server) };
    let mut sender = SmtpSender::new(config).expect("sender");
    let outcome = sender.send(&Parts::new("zoe@example.org").build("<s.1@example.com>")).await;
    assert!(
        matches!(&outcome, SendOutcome::Fatal { reason } if reason.contains("does not offer STARTTLS")),
        "{outcome:?}"
    );
    let commands = server.commands();
    assert!(commands.iter().all(|c| !c.starts_with("MAIL") && !c.starts_with("AUTH")), "{commands:?}");
    assert_eq!(server.message_count(), 0);
}

#[tokio::test]
async fn implicit_tls_against_a_plaintext_server_is_fatal() {
    let server = SmtpServer::start().await;
    let config = SmtpConfig { tls: SmtpTls::Wrapper, ..plain_config(&server) };
    let mut sender = SmtpSender::new(config).expect("sender");
    let outcome = sender.send(&Parts::new("zoe@example.org").build("<w.1@example.com>")).await;
    assert!(matches!(&outcome, SendOutcome::Fatal { reason } if reason.contains("TLS")), "{outcome:?}");
    // The server saw the TLS ClientHello as one garbled line, and no SMTP command.
    let commands = server.commands();
    assert!(
        commands.iter().all(|c| !["EHLO", "HELO", "MAIL", "AUTH"].iter().any(|v| c.starts_with(v))),
        "{commands:?}"
    );
}

#[test]
fn plaintext_to_a_host_that_is_not_loopback_is_refused_up_front() {
    let config = SmtpConfig { host: "mail.example.com".to_owned(), ..plain_config_for(25) };
    let error = SmtpSender::new(config).unwrap_err().to_string();
    assert!(error.contains("smtp.tls") && error.contains("mail.example.com"), "{error}");
}

#[tokio::test]
async fn authentication_works_and_the_password_never_shows() {
    let server = SmtpServer::start().await;
    let config = SmtpConfig {
        username: Some("digest".to_owned()),
        password: Some(SecretString::from(PASSWORD.to_owned())),
        ..plain_config(&server)
    };
    // Without AUTH on offer, sending stops with a reason that names the setting, not the secret.
    let mut sender = SmtpSender::new(config.clone()).expect("sender");
    let parts = Parts::new("zoe@example.org");
    let refused = sender.send(&parts.build("<a.1@example.com>")).await;
    assert!(matches!(&refused, SendOutcome::Fatal { reason } if reason.contains("smtp.username")), "{refused:?}");
    server.set_auth(true);
    let outcome = sender.send(&parts.build("<a.1@example.com>")).await;
    assert!(outcome.is_accepted(), "{outcome:?}");
    assert!(server.commands().iter().any(|c| c.starts_with("AUTH PLAIN")));
    let shown = format!("{config:?} {sender:?} {refused:?} {refused} {outcome:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[tokio::test]
async fn the_outbox_writes_one_file_per_message_exactly_as_smtp_delivers_it() {
    let server = SmtpServer::start().await;
    let dir = tempfile::tempdir().expect("temporary folder");
    let outbox = OutboxSender::new(dir.path().join("outbox")).expect("outbox");
    let mut senders = [Sender::Smtp(sender(&server)), Sender::Outbox(outbox.clone())];
    let parts = Parts::new("zoe@example.org");
    let messages = [parts.build("<122.1.a@example.com>"), parts.build("<122.2.b@example.com>")];
    for message in &messages {
        for sender in &mut senders {
            assert!(sender.send(message).await.is_accepted());
        }
    }
    let received = server.messages();
    for (message, smtp) in messages.iter().zip(&received) {
        let file = std::fs::read(outbox.path_for(&message.message_id)).expect("the .eml file exists");
        assert!(file == smtp.data, "the outbox copy of {} differs from what SMTP delivered", message.message_id);
        assert!(MessageParser::default().parse(&file).is_some());
    }
    let names = std::fs::read_dir(outbox.dir()).expect("read outbox").count();
    assert_eq!(names, 2, "one file per message, nothing else");
    // The same Message-ID again is the same delivery again: the first copy stays and the send succeeds.
    let again = Outgoing { subject: "Changed", ..parts.outgoing("<122.1.a@example.com>") };
    let outcome = senders[1].send(&build(&again, None).expect("builds")).await;
    assert!(matches!(&outcome, SendOutcome::Accepted { reply } if reply.contains("already")), "{outcome:?}");
    let kept = std::fs::read(outbox.path_for("<122.1.a@example.com>")).expect("read");
    assert!(kept == messages[0].bytes);
}

/// The Debian tools the DKIM tests need; `None` (after a loud line) when DKIM_TEST_SKIP=1 allows their absence.
fn dkim_tools() -> Option<&'static str> {
    // Debian's python3-dkim installs for the system Python, which a user's PATH may shadow.
    let python = if std::path::Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
    let works = |program: &str, args: &[&str]| {
        Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = [
        ("python3-dkim", works(python, &["-c", "import dkim, nacl"])),
        ("spamassassin", works("spamassassin", &["--version"])),
        ("openssl", works("openssl", &["version"])),
    ]
    .into_iter()
    .filter_map(|(package, present)| (!present).then_some(package))
    .collect();
    if missing.is_empty() {
        return Some(python);
    }
    if std::env::var("DKIM_TEST_SKIP").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: DKIM verification test ({} missing, DKIM_TEST_SKIP=1)", missing.join(", "));
        return None;
    }
    panic!("{} missing: run the tests through scripts/test, which installs them", missing.join(", "));
}

fn run(program: &str, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    // Writing from another thread means a child that answers before reading everything cannot deadlock us.
    let (mut stdin, input) = (child.stdin.take().expect("stdin"), input.to_vec());
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("wait");
    writer.join().expect("the writer thread").expect("write stdin");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{program} {args:?} failed: {stderr}");
    stdout.into_owned()
}

/// A fresh private key (PEM) and its public key as a DKIM `p=` value, both from openssl.
fn fresh_key(algorithm: DkimAlgorithm) -> (String, String) {
    let pem = match algorithm {
        DkimAlgorithm::RsaSha256 => run("openssl", &["genrsa", "2048"], b""),
        DkimAlgorithm::Ed25519Sha256 => run("openssl", &["genpkey", "-algorithm", "ed25519"], b""),
    };
    let public = run("sh", &["-c", "openssl pkey -pubout -outform DER | base64 -w0"], pem.as_bytes());
    let public = match algorithm {
        DkimAlgorithm::RsaSha256 => public.trim().to_owned(),
        // An Ed25519 record holds the bare 32-byte key: the SubjectPublicKeyInfo minus its 12-byte header.
        DkimAlgorithm::Ed25519Sha256 => {
            run("sh", &["-c", "base64 -d | tail -c 32 | base64 -w0"], public.trim().as_bytes())
        }
    };
    (pem, public)
}

const VERIFY: &str = "import sys, dkim\n\
record = sys.argv[1].encode()\n\
ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=lambda name, timeout=5: record)\n\
print('pass' if ok else 'fail')\n";

#[test]
fn dkim_signatures_verify_with_an_independent_verifier_and_the_sample_scores_low_in_spamassassin() {
    let Some(python) = dkim_tools() else { return };
    let parts = Parts::new("zoe@example.org");
    for algorithm in [DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256] {
        let (pem, public) = fresh_key(algorithm);
        let signer = DkimSigner::new("example.com", "tidings", algorithm, &pem).expect("the key is read");
        assert!(signer.dns_record().ends_with(&format!("p={public}")), "{} vs {public}", signer.dns_record());
        let built = build(&parts.outgoing("<122.1.dkim@example.com>"), Some(&signer)).expect("builds");
        let record = signer.dns_record();
        let verdict = run(python, &["-c", VERIFY, &record], &built.bytes);
        assert_eq!(verdict.trim(), "pass", "{algorithm:?} signature does not verify");
        let signature = MessageParser::default().parse(&built.bytes).map(|m| header(&m, "DKIM-Signature").to_owned());
        let signature = signature.expect("signed");
        assert!(signature.contains("c=relaxed/relaxed"), "{signature}");
        assert!(signature.contains("list-unsubscribe:list-unsubscribe-post"), "{signature}");
        assert!(!signature.to_ascii_lowercase().contains("content-type"), "{signature}");
        // Changing a signed header breaks the signature: the verifier really checks.
        let tampered = String::from_utf8(built.bytes.clone()).expect("ascii").replace("One-Click", "Two-Clicks");
        assert_eq!(run(python, &["-c", VERIFY, &record], tampered.as_bytes()).trim(), "fail");
        if algorithm == DkimAlgorithm::RsaSha256 {
            let (score, status) = spam_status(&run("spamassassin", &["-L", "-t"], &built.bytes));
            assert!(score < 1.0, "SpamAssassin scores the sample {score}: {status}");
            for rule in ["MIME_HTML_ONLY", "MISSING_MID", "MISSING_DATE"] {
                assert!(!status.contains(rule), "{rule} fired: {status}");
            }
        }
    }
}

/// The score and the folded X-Spam-Status header from SpamAssassin's report.
fn spam_status(report: &str) -> (f64, String) {
    let mut lines = report.lines().skip_while(|line| !line.starts_with("X-Spam-Status:"));
    let first = lines.next().expect("an X-Spam-Status header").to_owned();
    let status = lines.take_while(|line| line.starts_with([' ', '\t'])).fold(first, |all, line| all + line.trim_end());
    let score = status.split("score=").nth(1).and_then(|s| s.split_whitespace().next()).and_then(|s| s.parse().ok());
    (score.expect("a score in X-Spam-Status"), status)
}
