//! Exercises the test SMTP server with lettre (the client Tidings uses) and with raw TCP.

use std::time::Duration;

use crate::helpers::smtp_server::{Action, Fault, SmtpServer, Trigger, Verb};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn transport(server: &SmtpServer) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(server.port()).timeout(Some(WAIT)).build()
}

fn mailbox(address: &str) -> Mailbox {
    address.parse().expect("valid mailbox")
}

fn message(to: &[&str], subject: &str, body: &str) -> Message {
    let mut builder = Message::builder().from(mailbox("Tidings <news@example.com>")).subject(subject);
    for recipient in to {
        builder = builder.to(mailbox(recipient));
    }
    builder.header(ContentType::TEXT_PLAIN).body(body.to_owned()).expect("valid message")
}

/// A hand-driven SMTP client for what lettre will not do: pipelining, odd bytes, hanging up.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    async fn connect(server: &SmtpServer) -> Raw {
        let stream = TcpStream::connect(server.addr()).await.expect("connect");
        let mut raw = Raw { reader: BufReader::new(stream) };
        assert!(raw.reply().await.starts_with("220 "));
        raw
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.reader.get_mut().write_all(bytes.as_ref()).await.expect("write");
    }

    /// Reads one possibly multi-line reply, joined with `\n`; empty if the server hung up.
    async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(WAIT, self.reader.read_line(&mut line)).await.expect("reply in time");
            if read.unwrap_or(0) == 0 {
                return lines.join("\n");
            }
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n")).await;
        self.reply().await
    }

    /// True once the server has closed the connection (EOF or reset) without sending more.
    async fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match tokio::time::timeout(WAIT, self.reader.read_to_end(&mut rest)).await.expect("close in time") {
            Ok(_) => rest.is_empty(),
            Err(_) => true,
        }
    }
}

#[tokio::test]
async fn a_message_sent_with_lettre_is_recorded_with_its_envelope_and_exact_data() {
    let server = SmtpServer::start().await;
    let email = message(&["Ann <ann@example.org>", "bob@example.net"], "Issue 42", "Hello, readers!\r\n");
    let formatted = email.formatted();

    transport(&server).send(email).await.expect("send");

    let messages = server.wait_for_messages(1, WAIT).await.expect("one message");
    assert_eq!(messages.len(), 1);
    let received = &messages[0];
    assert_eq!(received.mail_from, "news@example.com");
    assert_eq!(received.rcpt_to, ["ann@example.org", "bob@example.net"]);
    // lettre always appends CRLF.CRLF, so the CRLF before the dot becomes part of the data.
    assert_eq!(received.data, [formatted.as_slice(), b"\r\n"].concat());
    let parsed = received.parsed().expect("parsable message");
    assert_eq!(parsed.subject(), Some("Issue 42"));
    assert_eq!(parsed.body_text(0).as_deref().map(str::trim_end), Some("Hello, readers!"));
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn raw_8bit_bodies_and_utf8_addresses_make_lettre_send_body_8bitmime_and_smtputf8() {
    let server = SmtpServer::start().await;
    // lettre picks quoted-printable or base64 for non-ASCII text unless told to send 8bit.
    let body = Body::new_with_encoding("Schöne Grüße\r\n".to_owned(), ContentTransferEncoding::EightBit).expect("8bit");
    let email = Message::builder()
        .from(mailbox("news@example.com"))
        .to(mailbox("jürgen@example.org"))
        .subject("Grüße")
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body))
        .expect("valid message");

    transport(&server).send(email).await.expect("send");

    let commands = server.commands();
    assert!(commands.contains(&"MAIL FROM:<news@example.com> SMTPUTF8 BODY=8BITMIME".to_owned()), "{commands:?}");
    let received = &server.messages()[0];
    assert_eq!(received.rcpt_to, ["jürgen@example.org"]);
    let parsed = received.parsed().expect("parsable");
    assert_eq!(parsed.subject(), Some("Grüße"));
    assert_eq!(parsed.body_text(0).as_deref().map(str::trim_end), Some("Schöne Grüße"));
}

#[tokio::test]
async fn dot_stuffed_lines_are_unstuffed_and_only_crlf_dot_crlf_ends_the_message() {
    let server = SmtpServer::start().await;
    let mut raw = Raw::connect(&server).await;
    assert!(raw.command("EHLO raw").await.starts_with("250-"));
    assert!(raw.command("MAIL FROM:<a@example.com>").await.starts_with("250 "));
    assert!(raw.command("RCPT TO:<b@example.com>").await.starts_with("250 "));
    assert!(raw.command("DATA").await.starts_with("354 "));

    raw.send("Subject: dots\r\n\r\n..leading dot\r\n...\r\nbare\n.\nstill body\r\n.\r\n").await;

    assert!(raw.reply().await.starts_with("250 "));
    assert_eq!(server.messages()[0].data, b"Subject: dots\r\n\r\n.leading dot\r\n..\r\nbare\n.\nstill body\r\n");
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let server = SmtpServer::start().await;
    server.inject(Fault::new(
        Trigger::rcpt_matching(|a| a.starts_with("nobody")),
        Action::reply(550, "5.1.1 no such user"),
    ));
    let mut raw = Raw::connect(&server).await;
    assert!(raw.command("EHLO raw").await.contains("250-PIPELINING"));

    raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n").await;
    let replies = [raw.reply().await, raw.reply().await, raw.reply().await, raw.reply().await];
    raw.send("Subject: piped\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n").await;
    let after = [raw.reply().await, raw.reply().await, raw.reply().await];

    let codes: Vec<&str> = replies.iter().chain(&after).map(|r| &r[..3]).collect();
    assert_eq!(codes, ["250", "550", "250", "354", "250", "250", "221"]);
    assert!(raw.is_closed().await);
    assert_eq!(server.messages()[0].rcpt_to, ["c@example.com"]);
}

#[tokio::test]
async fn commands_are_case_insensitive_and_out_of_sequence_commands_get_503() {
    let server = SmtpServer::start().await;
    let mut raw = Raw::connect(&server).await;

    assert!(raw.command("mail from:<a@example.com>").await.starts_with("503 "));
    assert_eq!(
        raw.command("ehlo raw").await,
        "250-localhost\n250-PIPELINING\n250-8BITMIME\n250-SMTPUTF8\n250 SIZE 52428800"
    );
    assert_eq!(raw.command("helo raw").await, "250 localhost");
    assert!(raw.command("rcpt to:<b@example.com>").await.starts_with("503 "));
    assert!(raw.command("data").await.starts_with("503 "));
    assert!(raw.command("Mail From:<a@example.com> SIZE=100 BODY=8BITMIME SMTPUTF8").await.starts_with("250 "));
    assert!(raw.command("MAIL FROM:<a@example.com>").await.starts_with("503 "));
    assert!(raw.command("data").await.starts_with("503 "));
    assert!(raw.command("rset").await.starts_with("250 "));
    assert!(raw.command("MAIL FROM:<a@example.com> SIZE=999999999").await.starts_with("552 "));
    assert!(raw.command("MAIL FROM:<a@example.com> FROBNICATE=1").await.starts_with("555 "));
    assert!(raw.command("MAIL FROM:a@example.com").await.starts_with("501 "));
    assert!(raw.command("MAIL FROM:<>").await.starts_with("250 "));
    assert!(raw.command("vrfy someone").await.starts_with("252 "));
    assert!(raw.command("noop").await.starts_with("250 "));
    assert!(raw.command("STARTTLS").await.starts_with("502 "));
    assert!(raw.command("AUTH PLAIN AGEAYg==").await.starts_with("502 "));
    assert!(raw.command("HELP").await.starts_with("500 "));
    assert!(raw.command("quit").await.starts_with("221 "));
    assert!(raw.is_closed().await);
}

#[tokio::test]
async fn a_451_on_one_recipient_fails_the_send_transiently_until_the_rule_is_used_up() {
    let server = SmtpServer::start().await;
    server.inject(
        Fault::new(Trigger::rcpt_matching(|a| a == "bob@example.net"), Action::reply(451, "4.3.0 try again later"))
            .times(1),
    );
    let mailer = transport(&server);
    let email = message(&["ann@example.org", "bob@example.net"], "Retry", "body");

    let error = mailer.send(email.clone()).await.expect_err("first attempt is refused");

    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.status().map(|code| code.to_string()), Some("451".to_owned()));
    assert!(error.to_string().contains("try again later"), "{error}");
    assert_eq!(server.message_count(), 0);
    // lettre gives up on the whole transaction at the first rejected recipient and says QUIT.
    assert!(server.commands().ends_with(&["RCPT TO:<bob@example.net>".to_owned(), "QUIT".to_owned()]));

    mailer.send(email).await.expect("retry succeeds once the rule is used up");

    let messages = server.wait_for_messages(1, WAIT).await.expect("one message");
    assert_eq!(messages[0].rcpt_to, ["ann@example.org", "bob@example.net"]);
    assert_eq!(server.connection_count(), 2, "the failed connection is not reused");
}

#[tokio::test]
async fn a_550_on_a_recipient_gives_a_permanent_error() {
    let server = SmtpServer::start().await;
    server.inject(Fault::new(Trigger::Command(Verb::Rcpt), Action::reply(550, "5.1.1 no such user")));

    let error = transport(&server).send(message(&["ghost@example.org"], "Hi", "body")).await.expect_err("refused");

    assert!(error.is_permanent(), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(error.status().map(|code| code.to_string()), Some("550".to_owned()));
    assert_eq!(server.message_count(), 0);
}

#[tokio::test]
async fn a_rejection_at_the_final_dot_is_not_recorded_and_is_permanent_for_5xx() {
    let server = SmtpServer::start().await;
    server.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::reply(554, "5.7.1 rejected")).times(1));
    let mailer = transport(&server);

    let error = mailer.send(message(&["ann@example.org"], "Spam?", "body")).await.expect_err("rejected");

    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(server.message_count(), 0);
    assert!(server.dropped_after_data().is_empty());
    mailer.send(message(&["ann@example.org"], "Ham", "body")).await.expect("the next one goes through");
    assert_eq!(server.messages()[0].parsed().expect("parsable").subject(), Some("Ham"));
}

#[tokio::test]
async fn a_421_reply_is_transient_and_closes_the_connection() {
    let server = SmtpServer::start().await;
    server.inject(Fault::new(Trigger::Command(Verb::Mail), Action::reply(421, "4.7.0 too busy")).times(2));

    let error = transport(&server).send(message(&["ann@example.org"], "Hi", "body")).await.expect_err("busy");
    assert!(error.is_transient(), "{error:?}");

    let mut raw = Raw::connect(&server).await;
    assert!(raw.command("EHLO raw").await.starts_with("250-"));
    assert_eq!(raw.command("MAIL FROM:<a@example.com>").await, "421 4.7.0 too busy");
    assert!(raw.is_closed().await);
}

#[tokio::test]
async fn dropping_the_connection_at_the_final_dot_leaves_the_message_only_in_dropped_after_data() {
    let server = SmtpServer::start().await;
    server.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::Drop).times(1));

    let error = transport(&server).send(message(&["ann@example.org"], "Lost ack", "body")).await.expect_err("no ack");

    // lettre sees EOF where it expects a reply and reports a response error without a code.
    assert!(error.is_response(), "{error:?}");
    assert!(!error.is_transient() && !error.is_permanent());
    assert_eq!(error.status(), None);
    assert_eq!(server.message_count(), 0);
    let dropped = server.dropped_after_data();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].rcpt_to, ["ann@example.org"]);
    assert_eq!(dropped[0].parsed().expect("parsable").subject(), Some("Lost ack"));
}

#[tokio::test]
async fn dropping_the_connection_on_ehlo_gives_lettre_a_response_error() {
    let server = SmtpServer::start().await;
    server.inject(Fault::new(Trigger::Command(Verb::Ehlo), Action::Drop));

    let error = transport(&server).send(message(&["ann@example.org"], "Hi", "body")).await.expect_err("dropped");

    assert!(error.is_response(), "{error:?}");
    assert_eq!(server.commands().len(), 1);
}

#[tokio::test]
async fn stall_until_released_holds_the_client_at_the_final_dot_until_release_stalls() {
    let server = SmtpServer::start().await;
    server.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::StallUntilReleased).times(1));
    let mailer = transport(&server);
    let email = message(&["ann@example.org"], "Held", "body");
    let sending = tokio::spawn(async move { mailer.send(email).await });

    server.wait_for_stalled(1, WAIT).await.expect("the session stalls");

    assert!(!sending.is_finished());
    assert_eq!(server.message_count(), 0);
    server.release_stalls();
    tokio::time::timeout(WAIT, sending).await.expect("client finishes").expect("task").expect("send succeeds");
    assert_eq!(server.messages()[0].parsed().expect("parsable").subject(), Some("Held"));
}

#[tokio::test]
async fn a_timed_stall_proceeds_normally_afterwards() {
    // How long the stall lasts is not asserted (tests never assert on time); that the session resumes is.
    let server = SmtpServer::start().await;
    server.inject(Fault::new(Trigger::Command(Verb::Data), Action::Stall(Duration::from_millis(50))));

    transport(&server).send(message(&["ann@example.org"], "Slow", "body")).await.expect("send");

    assert_eq!(server.message_count(), 1);
    assert!(server.commands().iter().any(|c| c.eq_ignore_ascii_case("DATA")));
}

#[tokio::test]
async fn a_predicate_rejects_a_deterministic_tenth_of_recipients_and_the_rest_are_delivered() {
    let server = SmtpServer::start().await;
    let unlucky = |address: &str| address.trim_start_matches("user").split('@').next() == Some("7");
    server.inject(Fault::new(Trigger::rcpt_matching(move |a| unlucky(a)), Action::reply(550, "5.1.1 no such user")));
    let mailer = transport(&server);

    let mut failed = Vec::new();
    for i in 0..10 {
        let to = format!("user{i}@example.org");
        if mailer.send(message(&[&to], "Digest", "body")).await.is_err() {
            failed.push(to);
        }
    }

    assert_eq!(failed, ["user7@example.org"]);
    assert_eq!(server.wait_for_messages(9, WAIT).await.expect("nine").len(), 9);
}

#[tokio::test]
async fn a_rule_with_times_fires_that_many_times_and_clear_faults_removes_the_rest() {
    let server = SmtpServer::start().await;
    server.inject(Fault::new(Trigger::Command(Verb::Mail), Action::reply(451, "4.3.0 later")).times(2));
    server.inject(Fault::new(Trigger::Command(Verb::Rcpt), Action::reply(550, "5.1.1 no")));
    let mut raw = Raw::connect(&server).await;
    raw.command("EHLO raw").await;

    let codes = [
        raw.command("MAIL FROM:<a@example.com>").await,
        raw.command("MAIL FROM:<a@example.com>").await,
        raw.command("MAIL FROM:<a@example.com>").await,
        raw.command("RCPT TO:<b@example.com>").await,
    ];
    server.clear_faults();
    let after_clear = raw.command("RCPT TO:<b@example.com>").await;

    assert_eq!(codes.map(|r| r[..3].to_owned()), ["451", "451", "250", "550"]);
    assert!(after_clear.starts_with("250 "));
}

#[tokio::test]
async fn refusing_makes_new_connections_fail_until_it_is_switched_off() {
    let server = SmtpServer::start().await;
    let mut open = Raw::connect(&server).await;
    server.set_refusing(true);
    let mailer = transport(&server);

    let error = mailer.send(message(&["ann@example.org"], "Down", "body")).await.expect_err("refused");
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.status().map(|code| code.to_string()), Some("421".to_owned()));
    assert!(open.command("NOOP").await.starts_with("250 "), "an existing session is unaffected");

    server.set_refusing(false);
    mailer.send(message(&["ann@example.org"], "Up", "body")).await.expect("accepted again");

    assert_eq!(server.messages()[0].parsed().expect("parsable").subject(), Some("Up"));
    assert_eq!(server.connection_count(), 3);
}

#[tokio::test]
async fn garbage_a_2mb_line_and_a_hang_up_mid_data_do_not_stop_the_server() {
    let server = SmtpServer::start().await;

    let mut raw = Raw::connect(&server).await;
    assert!(raw.command("\u{1}\u{ff}garbage \0 here").await.starts_with("500 "));
    raw.send([0xff, 0xfe, b'\r', b'\n']).await;
    assert!(raw.reply().await.starts_with("500 "));
    assert_eq!(raw.command(&"x".repeat(2 << 20)).await, "500 5.5.2 line too long");
    raw.command("EHLO raw").await;
    raw.command("MAIL FROM:<a@example.com>").await;
    raw.command("RCPT TO:<b@example.com>").await;
    raw.command("DATA").await;
    raw.send(format!("Subject: huge\r\n\r\n{}\r\n.\r\n", "y".repeat(2 << 20))).await;
    assert!(raw.reply().await.starts_with("554 "), "an over-long message line rejects the message");
    assert!(raw.command("NOOP").await.starts_with("250 "));

    let mut quitter = Raw::connect(&server).await;
    quitter.command("EHLO raw").await;
    quitter.command("MAIL FROM:<a@example.com>").await;
    quitter.command("RCPT TO:<b@example.com>").await;
    quitter.command("DATA").await;
    quitter.send("Subject: half\r\n\r\nthe rest never comes").await;
    drop(quitter);
    drop(TcpStream::connect(server.addr()).await.expect("connect and hang up at once"));

    transport(&server).send(message(&["ann@example.org"], "Next", "body")).await.expect("next client is served");
    assert_eq!(server.messages().len(), 1);
    assert_eq!(server.messages()[0].parsed().expect("parsable").subject(), Some("Next"));
}

#[tokio::test]
async fn auth_plain_and_login_accept_any_credentials_when_enabled() {
    let server = SmtpServer::start().await;
    server.set_auth(true);
    for mechanism in [Mechanism::Plain, Mechanism::Login] {
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(server.port())
            .credentials(Credentials::new("user".to_owned(), "secret".to_owned()))
            .authentication(vec![mechanism])
            .build();
        mailer.send(message(&["ann@example.org"], "Authed", "body")).await.expect("send with AUTH");
    }

    let auth_lines: Vec<String> = server.commands().into_iter().filter(|c| c.starts_with("AUTH")).collect();
    assert_eq!(auth_lines.len(), 2, "{auth_lines:?}");
    assert!(auth_lines[0].starts_with("AUTH PLAIN "));
    assert!(auth_lines[1].starts_with("AUTH LOGIN"));
    assert_eq!(server.message_count(), 2);
}

#[tokio::test]
async fn wait_for_messages_times_out_saying_how_many_arrived() {
    let server = SmtpServer::start().await;
    transport(&server).send(message(&["ann@example.org"], "One", "body")).await.expect("send");

    let error = server.wait_for_messages(2, Duration::from_millis(50)).await.expect_err("only one arrives");

    assert!(error.contains("but 1 arrived"), "{error}");
}

#[tokio::test]
async fn dropping_the_server_closes_its_open_sessions() {
    let server = SmtpServer::start().await;
    let mut raw = Raw::connect(&server).await;

    drop(server);

    assert!(raw.is_closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_are_all_recorded_and_wake_wait_for_messages() {
    let server = SmtpServer::start().await;
    let mailer = transport(&server);

    let sends: Vec<_> = (0..20)
        .map(|i| {
            let mailer = mailer.clone();
            tokio::spawn(
                async move { mailer.send(message(&[&format!("user{i}@example.org")], "Digest", "body")).await },
            )
        })
        .collect();

    let messages = server.wait_for_messages(20, WAIT).await.expect("all twenty");
    let mut recipients: Vec<String> = messages.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    recipients.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("user{i}@example.org")).collect();
    expected.sort();
    assert_eq!(recipients, expected);
    for send in sends {
        send.await.expect("task").expect("send");
    }
}

#[tokio::test]
async fn a_reply_below_400_replaces_the_success_reply_and_the_command_still_takes_effect() {
    let server = SmtpServer::start().await;
    server.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::reply(250, "2.0.0 queued as ABC123")));
    let mailer = transport(&server);

    let response = mailer.send(message(&["ann@example.org"], "Queued", "body")).await.expect("send");

    assert_eq!(response.message().collect::<Vec<_>>(), ["2.0.0 queued as ABC123"]);
    assert_eq!(server.message_count(), 1);
}

#[tokio::test]
async fn a_rule_with_zero_times_never_fires() {
    let server = SmtpServer::start().await;
    server.inject(Fault { when: Trigger::Command(Verb::Mail), action: Action::Drop, times: Some(0) });

    transport(&server).send(message(&["ann@example.org"], "Fine", "body")).await.expect("send");

    assert_eq!(server.message_count(), 1);
}
