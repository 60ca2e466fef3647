//! `tidings doctor` against a real DNS server (dnsmasq on a loopback port, serving a `.test` zone with good
//! and broken records) and a real relay (a STARTTLS relay with a test CA, or the plaintext SMTP test server):
//! a correctly set-up domain passes every check, and each broken set-up fails its own check with its own
//! message and exit status 1. The JSON output is what the tests read.

use std::collections::HashMap;
use std::process::ExitCode;

use serde_json::Value;
use tidings::cli::Command;
use tidings::mailer::{DkimAlgorithm, DkimSigner};

use crate::helpers::dns::{DnsServer, Zone};
use crate::helpers::smtp_server::SmtpServer;
use crate::helpers::tls_relay::TlsRelay;
use crate::helpers::{TEST_KEYS, tidings_with_env};

const USER: &str = "digest";
const PASSWORD: &str = "relay-test-password-0123";
/// Ed25519 seeds (base64) for the configured DKIM key and for a key that is not it.
const SEED: &str = "ChCE9zVtKjp4Fr4ZtJ3QGxvTqTKKiuQoF1cMHxSiXJs=";
const OTHER_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

/// Every check a full set-up answers, in order.
const ALL_CHECKS: [&str; 16] = [
    "spf",
    "spf-lookups",
    "dkim",
    "dmarc",
    "dkim-alignment",
    "spf-alignment",
    "spf-return-path",
    "bounce-mx",
    "relay",
    "relay-tls",
    "relay-auth",
    "base-url",
    "link-keys",
    "one-click",
    "postal-address",
    "open-pixel",
];

fn dkim_record(seed: &str) -> String {
    DkimSigner::new("news.test", "s1", DkimAlgorithm::Ed25519Sha256, seed).expect("the seed is a key").dns_record()
}

/// The records of a correctly set-up sender: news.test signs and sends, bounces come back to
/// bounces.news.test, and other.test (used for a misaligned From) has its own SPF and DMARC.
fn good_zone() -> Zone {
    Zone::default()
        .txt("news.test", "v=spf1 include:_spf.relay.test -all")
        .txt("news.test", "google-site-verification=abc")
        .txt("_spf.relay.test", "v=spf1 ip4:192.0.2.0/24 a:mx.relay.test -all")
        .txt("s1._domainkey.news.test", &dkim_record(SEED))
        .txt("_dmarc.news.test", "v=DMARC1; p=reject; rua=mailto:dmarc@news.test")
        .txt("bounces.news.test", "v=spf1 include:_spf.relay.test -all")
        .mx("bounces.news.test", "mx.news.test")
        .txt("other.test", "v=spf1 include:_spf.relay.test -all")
        .txt("_dmarc.other.test", "v=DMARC1; p=none")
}

/// The settings of a correctly set-up sender, asking `dns` and sending through the relay on `relay_port`.
fn good_settings(dns: &DnsServer, relay: &TlsRelay) -> Vec<(String, String)> {
    [
        ("TIDINGS_DOCTOR__NAMESERVER", dns.address()),
        ("TIDINGS_DOCTOR__TIMEOUT", "5s".to_owned()),
        ("TIDINGS_SENDER__FROM", "News <news@news.test>".to_owned()),
        ("TIDINGS_DKIM__ENABLED", "true".to_owned()),
        ("TIDINGS_DKIM__DOMAIN", "news.test".to_owned()),
        ("TIDINGS_DKIM__SELECTOR", "s1".to_owned()),
        ("TIDINGS_DKIM__ALGORITHM", "ed25519-sha256".to_owned()),
        ("TIDINGS_DKIM__PRIVATE_KEY", SEED.to_owned()),
        ("TIDINGS_BOUNCES__ADDRESS", "bounces@bounces.news.test".to_owned()),
        ("TIDINGS_TRANSPORT__KIND", "smtp".to_owned()),
        ("TIDINGS_SMTP__HOST", "127.0.0.1".to_owned()),
        ("TIDINGS_SMTP__PORT", relay.port.to_string()),
        ("TIDINGS_SMTP__TLS", "required".to_owned()),
        ("TIDINGS_SMTP__CA_FILE", relay.ca_file().display().to_string()),
        ("TIDINGS_SMTP__USERNAME", USER.to_owned()),
        ("TIDINGS_SMTP__PASSWORD", PASSWORD.to_owned()),
        ("TIDINGS_SMTP__CONNECT_TIMEOUT", "10s".to_owned()),
        ("TIDINGS_SMTP__COMMAND_TIMEOUT", "10s".to_owned()),
        ("TIDINGS_HTTP__BASE_URL", "https://news.test".to_owned()),
        ("TIDINGS_LINKS__SIGNING_KEYS", TEST_KEYS.to_owned()),
        ("TIDINGS_TRACKING__OPENS", "false".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Lays `changes` over `base` (an empty value removes the variable, so the default applies).
fn with(base: &[(String, String)], changes: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = base.iter().cloned().collect();
    for (key, value) in changes {
        if value.is_empty() {
            vars.remove(*key);
        } else {
            vars.insert((*key).to_owned(), (*value).to_owned());
        }
    }
    vars
}

/// Runs `tidings doctor --json` in-process: the exit status and the parsed report.
async fn doctor(vars: &HashMap<String, String>) -> (ExitCode, Value) {
    let settings = tidings::configuration::load_layers(None, vars).expect("settings");
    let mut out = Vec::new();
    let code = tidings::admin::run(Command::Doctor { json: true }, settings, &mut out).await.expect("the doctor runs");
    let report: Value = serde_json::from_slice(&out).expect("the output is JSON");
    (code, report)
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| (c["id"].as_str().expect("id").to_owned(), c["status"].as_str().expect("status").to_owned()))
        .collect()
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"].as_array().expect("checks").iter().find(|c| c["id"] == id).unwrap_or_else(|| {
        panic!("no check `{id}` in {report:#}");
    })
}

#[tokio::test]
async fn a_correctly_set_up_domain_and_relay_pass_every_check_and_no_message_is_sent() {
    let Some(dns) = DnsServer::start(&good_zone()).await else { return };
    let relay = TlsRelay::start(USER, PASSWORD).await;

    let (code, report) = doctor(&with(&good_settings(&dns, &relay), &[])).await;

    let ids: Vec<String> = statuses(&report).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ALL_CHECKS, "{report:#}");
    let not_ok: Vec<_> = statuses(&report).into_iter().filter(|(_, status)| status != "ok").collect();
    assert!(not_ok.is_empty(), "{not_ok:?} in {report:#}\ndnsmasq: {}", dns.log());
    assert_eq!((report["ok"].as_bool(), report["failures"].as_u64()), (Some(true), Some(0)));
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(check(&report, "spf-lookups")["message"].as_str().unwrap().contains("needs 2 of at most 10"));
    // The relay saw a whole conversation up to AUTH over TLS, and no message.
    assert_eq!(relay.commands(), ["EHLO", "STARTTLS", "EHLO", "AUTH", "QUIT"]);
}

/// One broken set-up: what changes in DNS or the settings, and the one check that must fail, with words its
/// message must hold.
struct Broken {
    name: &'static str,
    zone: fn(Zone) -> Zone,
    settings: &'static [(&'static str, &'static str)],
    plaintext_relay: bool,
    fails: &'static str,
    says: &'static str,
}

const BROKEN: &[Broken] = &[
    Broken {
        name: "no SPF",
        zone: |z| z.without_txt("news.test", "v=spf1"),
        settings: &[],
        plaintext_relay: false,
        fails: "spf",
        says: "news.test has no SPF record",
    },
    Broken {
        name: "two SPF records",
        zone: |z| z.txt("news.test", "v=spf1 a -all"),
        settings: &[],
        plaintext_relay: false,
        fails: "spf",
        says: "news.test has 2 SPF records",
    },
    Broken {
        name: "SPF over 10 lookups",
        zone: |z| {
            z.without_txt("news.test", "v=spf1")
                .txt("news.test", "v=spf1 include:one.spf.test include:two.spf.test -all")
                .txt("one.spf.test", "v=spf1 a mx a:x.test mx:y.test ptr -all")
                .txt("two.spf.test", "v=spf1 a mx exists:z.test a:w.test include:_spf.relay.test -all")
        },
        settings: &[],
        plaintext_relay: false,
        fails: "spf-lookups",
        says: "needs 13 DNS lookups, over the limit of 10",
    },
    Broken {
        name: "an SPF include loop",
        zone: |z| {
            z.without_txt("news.test", "v=spf1")
                .txt("news.test", "v=spf1 include:loop.spf.test -all")
                .txt("loop.spf.test", "v=spf1 include:news.test -all")
        },
        settings: &[],
        plaintext_relay: false,
        fails: "spf-lookups",
        says: "needs at least 31 DNS lookups",
    },
    Broken {
        name: "DKIM record with another key",
        zone: |z| {
            z.without_txt("s1._domainkey.news.test", "v=DKIM1").txt("s1._domainkey.news.test", &dkim_record(OTHER_SEED))
        },
        settings: &[],
        plaintext_relay: false,
        fails: "dkim",
        says: "s1._domainkey.news.test is another key than the configured one",
    },
    Broken {
        name: "no DKIM record",
        zone: |z| z.without_txt("s1._domainkey.news.test", "v=DKIM1"),
        settings: &[],
        plaintext_relay: false,
        fails: "dkim",
        says: "s1._domainkey.news.test has no DKIM key record",
    },
    Broken {
        name: "no DMARC",
        zone: |z| z.without_txt("_dmarc.news.test", "v=DMARC1"),
        settings: &[],
        plaintext_relay: false,
        fails: "dmarc",
        says: "news.test has no DMARC record",
    },
    Broken {
        name: "a DMARC record without a policy",
        zone: |z| {
            z.without_txt("_dmarc.news.test", "v=DMARC1").txt("_dmarc.news.test", "v=DMARC1; rua=mailto:d@news.test")
        },
        settings: &[],
        plaintext_relay: false,
        fails: "dmarc",
        says: "does not parse: it has no policy",
    },
    Broken {
        name: "misaligned From",
        zone: |z| z,
        settings: &[("TIDINGS_SENDER__FROM", "News <news@other.test>"), ("TIDINGS_BOUNCES__ADDRESS", "")],
        plaintext_relay: false,
        fails: "dkim-alignment",
        says: "From's domain other.test does not align with the DKIM domain d=news.test",
    },
    Broken {
        name: "a return path on another domain",
        zone: |z| z.txt("bounces.other.test", "v=spf1 -all").mx("bounces.other.test", "mx.other.test"),
        settings: &[("TIDINGS_BOUNCES__ADDRESS", "bounces@bounces.other.test")],
        plaintext_relay: false,
        fails: "spf-alignment",
        says: "bounces.other.test does not align with From's news.test",
    },
    Broken {
        name: "a bounce domain without MX",
        zone: |z| z.txt("nomx.news.test", "v=spf1 -all"),
        settings: &[("TIDINGS_BOUNCES__ADDRESS", "bounces@nomx.news.test")],
        plaintext_relay: false,
        fails: "bounce-mx",
        says: "nomx.news.test has no MX record",
    },
    Broken {
        name: "HTTP base_url",
        zone: |z| z,
        settings: &[("TIDINGS_HTTP__BASE_URL", "http://news.test")],
        plaintext_relay: false,
        fails: "base-url",
        says: "http.base_url is http://news.test, not HTTPS",
    },
    Broken {
        name: "missing postal address",
        zone: |z| z,
        settings: &[("TIDINGS_SENDER__POSTAL_ADDRESS", " ")],
        plaintext_relay: false,
        fails: "postal-address",
        says: "sender.postal_address is empty",
    },
    Broken {
        name: "a short link key",
        zone: |z| z,
        settings: &[("TIDINGS_LINKS__SIGNING_KEYS", "1:short")],
        plaintext_relay: false,
        fails: "link-keys",
        says: "links.signing_keys",
    },
    Broken {
        name: "a wrong relay password",
        zone: |z| z,
        settings: &[("TIDINGS_SMTP__PASSWORD", "not-the-password-0123")],
        plaintext_relay: false,
        fails: "relay-auth",
        says: "535",
    },
    Broken {
        name: "a relay certificate from an unknown CA",
        zone: |z| z,
        settings: &[("TIDINGS_SMTP__CA_FILE", "")],
        plaintext_relay: false,
        fails: "relay-tls",
        says: "certificate",
    },
    Broken {
        name: "a relay without STARTTLS",
        zone: |z| z,
        settings: &[("TIDINGS_SMTP__USERNAME", ""), ("TIDINGS_SMTP__PASSWORD", "")],
        plaintext_relay: true,
        fails: "relay-tls",
        says: "does not offer STARTTLS",
    },
];

#[tokio::test]
async fn each_broken_set_up_fails_its_own_check_with_its_own_message() {
    let mut messages = Vec::new();
    for case in BROKEN {
        let Some(dns) = DnsServer::start(&(case.zone)(good_zone())).await else { return };
        let relay = TlsRelay::start(USER, PASSWORD).await;
        let plaintext = SmtpServer::start().await;
        let mut changes = case.settings.to_vec();
        let port = plaintext.port().to_string();
        if case.plaintext_relay {
            changes.push(("TIDINGS_SMTP__PORT", port.as_str()));
        }

        let (code, report) = doctor(&with(&good_settings(&dns, &relay), &changes)).await;

        let failed: Vec<String> =
            statuses(&report).into_iter().filter(|(_, status)| status == "failure").map(|(id, _)| id).collect();
        assert_eq!(failed, [case.fails], "{}: {report:#}", case.name);
        let found = check(&report, case.fails);
        let message = found["message"].as_str().expect("message");
        assert!(message.contains(case.says), "{}: `{message}` lacks `{}`", case.name, case.says);
        assert!(!found["fix"].as_str().expect("a fix").is_empty(), "{}", case.name);
        assert_eq!(code, ExitCode::FAILURE, "{}", case.name);
        assert_eq!((report["ok"].as_bool(), report["failures"].as_u64()), (Some(false), Some(1)), "{}", case.name);
        if case.plaintext_relay {
            // Nothing but EHLO and QUIT went to a relay that cannot encrypt.
            assert_eq!(plaintext.message_count(), 0);
        }
        messages.push(message.to_owned());
    }
    let distinct: std::collections::BTreeSet<&String> = messages.iter().collect();
    assert_eq!(distinct.len(), BROKEN.len(), "every broken set-up has its own message: {messages:#?}");
}

#[tokio::test]
async fn open_tracking_without_a_disclosure_is_a_warning_that_does_not_fail_the_run() {
    let Some(dns) = DnsServer::start(&good_zone()).await else { return };
    let relay = TlsRelay::start(USER, PASSWORD).await;

    let (code, report) = doctor(&with(&good_settings(&dns, &relay), &[("TIDINGS_TRACKING__OPENS", "true")])).await;

    assert_eq!(check(&report, "open-pixel")["status"], "warning", "{report:#}");
    assert_eq!((report["failures"].as_u64(), report["warnings"].as_u64()), (Some(0), Some(1)));
    assert_eq!(code, ExitCode::SUCCESS);
}

// Two workers: the relay's task must answer while this test waits on the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_each_check_and_exits_1_when_one_fails_and_0_when_none_does() {
    let Some(dns) = DnsServer::start(&good_zone().without_txt("_dmarc.news.test", "v=DMARC1")).await else { return };
    let relay = TlsRelay::start(USER, PASSWORD).await;
    let dir = tempfile::tempdir().expect("folder");
    let vars = good_settings(&dns, &relay);
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let broken = tidings_with_env(&["doctor"], &env, dir.path());
    assert_eq!(broken.code, Some(1), "{}{}", broken.stdout, broken.stderr);
    assert!(broken.stdout.contains("FAILURE  dmarc"), "{}", broken.stdout);
    assert!(broken.stdout.contains("ok       relay-auth"), "{}", broken.stdout);
    assert!(broken.stdout.contains("fix: publish a TXT record at _dmarc.news.test"), "{}", broken.stdout);
    assert!(!broken.stdout.contains(PASSWORD) && !broken.stderr.contains(PASSWORD));

    let json = tidings_with_env(&["doctor", "--json"], &env, dir.path());
    assert_eq!(json.code, Some(1));
    let report: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(check(&report, "dmarc")["status"], "failure");
    drop(dns);

    let Some(dns) = DnsServer::start(&good_zone()).await else { return };
    let vars = good_settings(&dns, &relay);
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let fine = tidings_with_env(&["doctor"], &env, dir.path());
    assert_eq!(fine.code, Some(0), "{}{}", fine.stdout, fine.stderr);
    assert!(fine.stdout.contains("every check passed"), "{}", fine.stdout);
}

#[tokio::test]
async fn an_rsa_key_published_across_several_txt_strings_is_read_whole() {
    let pem = std::process::Command::new("openssl").args(["genrsa", "2048"]).output().expect("openssl");
    assert!(pem.status.success());
    let pem = String::from_utf8(pem.stdout).expect("PEM");
    let record = DkimSigner::new("news.test", "s1", DkimAlgorithm::RsaSha256, &pem).expect("RSA key").dns_record();
    assert!(record.len() > 255, "a 2048-bit key does not fit one TXT string");
    let zone = good_zone().without_txt("s1._domainkey.news.test", "v=DKIM1").txt("s1._domainkey.news.test", &record);
    let Some(dns) = DnsServer::start(&zone).await else { return };
    let relay = TlsRelay::start(USER, PASSWORD).await;
    let rsa = [("TIDINGS_DKIM__ALGORITHM", "rsa-sha256"), ("TIDINGS_DKIM__PRIVATE_KEY", pem.as_str())];

    let (code, report) = doctor(&with(&good_settings(&dns, &relay), &rsa)).await;

    assert_eq!(check(&report, "dkim")["status"], "ok", "{report:#}");
    assert_eq!(code, ExitCode::SUCCESS, "{report:#}");
}

#[tokio::test]
async fn a_name_server_that_never_answers_fails_the_first_question_and_the_others_are_not_asked() {
    // A UDP socket nobody reads and a TCP listener nobody answers: every question times out.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    let port = udp.local_addr().expect("address").port();
    let _tcp = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind TCP on the same port");
    let relay = TlsRelay::start(USER, PASSWORD).await;
    let Some(dns) = DnsServer::start(&good_zone()).await else { return };
    let silent = format!("127.0.0.1:{port}");
    let vars = with(
        &good_settings(&dns, &relay),
        &[("TIDINGS_DOCTOR__NAMESERVER", &silent), ("TIDINGS_DOCTOR__TIMEOUT", "1s")],
    );

    let (code, report) = doctor(&vars).await;

    assert_eq!(code, ExitCode::FAILURE, "{report:#}");
    let spf = check(&report, "spf");
    assert_eq!(spf["status"], "failure", "{report:#}");
    assert!(spf["message"].as_str().is_some_and(|m| m.contains("cannot look up")), "{spf:#}");
    let dmarc = check(&report, "dmarc");
    assert_eq!(dmarc["status"], "failure", "{report:#}");
    assert!(dmarc["message"].as_str().is_some_and(|m| m.contains("not asked")), "{dmarc:#}");
    // The relay and the settings are still checked.
    assert_eq!(check(&report, "relay")["status"], "ok", "{report:#}");
    assert_eq!(check(&report, "postal-address")["status"], "ok", "{report:#}");
}
