//! A small SMTP/LMTP client for the report listener: it says exactly what a tests needs (one command at a time)
//! and returns the server's replies verbatim, so tests assert on what the listener answered.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const WAIT: Duration = Duration::from_secs(30);

pub struct ReportClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub greeting: String,
}

impl ReportClient {
    /// Connects and reads the greeting.
    pub async fn connect(port: u16) -> ReportClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect to the report listener");
        let (read, writer) = stream.into_split();
        let mut client = ReportClient { reader: BufReader::new(read), writer, greeting: String::new() };
        client.greeting = client.reply().await;
        client
    }

    /// Connects and says hello (`EHLO` or `LHLO`).
    pub async fn hello(port: u16, lmtp: bool) -> ReportClient {
        let mut client = Self::connect(port).await;
        let hello = client.command(if lmtp { "LHLO mta.example.net" } else { "EHLO mta.example.net" }).await;
        assert!(hello.starts_with("250"), "{hello}");
        client
    }

    /// One reply, all its lines joined by newlines; empty when the connection closed.
    pub async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(WAIT, self.reader.read_line(&mut line)).await.expect("a reply in time");
            if read.expect("read a reply") == 0 {
                break;
            }
            let done = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.trim_end().to_owned());
            if done {
                break;
            }
        }
        lines.join("\n")
    }

    pub async fn command(&mut self, line: &str) -> String {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).await.expect("write a command");
        self.reply().await
    }

    /// MAIL FROM:<>, one RCPT per recipient, DATA, the dot-stuffed message: the replies to each RCPT and to
    /// the final dot (one per recipient for LMTP). Stops at the first refused RCPT when no recipient is left.
    pub async fn send(&mut self, recipients: &[&str], message: &[u8], lmtp: bool) -> (Vec<String>, Vec<String>) {
        let mail = self.command("MAIL FROM:<>").await;
        assert!(mail.starts_with("250"), "MAIL: {mail}");
        let mut rcpt_replies = Vec::new();
        for recipient in recipients {
            rcpt_replies.push(self.command(&format!("RCPT TO:<{recipient}>")).await);
        }
        let accepted = rcpt_replies.iter().filter(|r| r.starts_with("250")).count();
        if accepted == 0 {
            let reset = self.command("RSET").await;
            assert!(reset.starts_with("250"), "RSET: {reset}");
            return (rcpt_replies, Vec::new());
        }
        let data = self.command("DATA").await;
        assert!(data.starts_with("354"), "DATA: {data}");
        self.writer.write_all(&dot_stuffed(message)).await.expect("write the message");
        self.writer.write_all(b".\r\n").await.expect("write the final dot");
        let mut final_replies = Vec::new();
        for _ in 0..if lmtp { accepted } else { 1 } {
            final_replies.push(self.reply().await);
        }
        (rcpt_replies, final_replies)
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }
}

/// CRLF line endings, a leading dot doubled, and a final CRLF.
pub fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message).replace("\r\n", "\n");
    let mut out = Vec::with_capacity(message.len() + 64);
    for line in text.trim_end_matches('\n').split('\n') {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}
