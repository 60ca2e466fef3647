#!/usr/bin/env python3
"""Writes the report corpus (*.eml) and its manifest (expected.toml) in this directory.

The messages follow the formats real mail systems send (Postfix, Exim, Sendmail, qmail, Exchange/Office 365,
Gmail, Yahoo, AOL, Microsoft JMRP, vacation responders), written by hand from their documented and observed
shapes; addresses are example domains. The expectations are written here by hand, not produced by the parser.
Run it again after changing a message: `python3 tests/reports/generate.py`.
"""
import os, random

HERE = os.path.dirname(os.path.abspath(__file__))
DATE = "Mon, 30 Nov 2026 09:00:00 +0000"
RP = "bounces+t1.d101.Qm9v@news.example.com"
entries = []


def original(to, ref, mid, extra=""):
    refs = "".join(f"X-Tidings-Ref: {r}\n" for r in ([ref] if isinstance(ref, str) else (ref or [])))
    return (f"Return-Path: <{RP}>\nReceived: from news.example.com (news.example.com [192.0.2.10])\n"
            f"\tby mail.example.net with ESMTPS id 4Z1abc; {DATE}\n"
            f"From: Tidings Weekly <digest@news.example.com>\nTo: {to}\nSubject: So, what's up this week? Issue 12\n"
            f"Date: {DATE}\nMessage-ID: <{mid}@news.example.com>\n{refs}{extra}"
            f"List-Id: <weekly.news.example.com>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
            f"Hello, here is this week's issue.\nUnsubscribe: https://news.example.com/u/AbCd\n")


def headers_only(text):
    return text.split("\n\n", 1)[0] + "\n"


def dsn(name, subject, human, per_message, recipients, orig=None, orig_type="message/rfc822", sender=None,
        crlf=False, extra_headers="", expect=None):
    b = "=_report_boundary_" + name.replace(".", "_")
    sender = sender or "MAILER-DAEMON@mail.example.net (Mail Delivery System)"
    body = [f"From: {sender}\nTo: {RP}\nSubject: {subject}\nDate: {DATE}\nMessage-ID: <{name}@mail.example.net>\n"
            f"Auto-Submitted: auto-replied\n{extra_headers}MIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"{b}\"\n\n"
            f"This is a MIME-encapsulated message.\n\n--{b}\nContent-Description: Notification\n"
            f"Content-Type: text/plain; charset=us-ascii\n\n{human}\n\n--{b}\n"
            f"Content-Description: Delivery report\nContent-Type: message/delivery-status\n\n{per_message}\n"]
    for r in recipients:
        body.append("\n" + r + "\n")
    if orig is not None:
        content = orig if orig_type == "message/rfc822" else headers_only(orig)
        body.append(f"\n--{b}\nContent-Description: Undelivered Message\nContent-Type: {orig_type}\n\n{content}")
    body.append(f"\n--{b}--\n")
    write(name, "".join(body), crlf, expect)


def write(name, text, crlf=False, expect=None, raw=None):
    data = raw if raw is not None else text.encode("utf-8")
    if crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    entries.append((name, expect))


def expect(form, kinds=(), statuses=(), recipients=(), refs=(), feedback=None, error=None):
    return dict(form=form, kinds=list(kinds), statuses=list(statuses), recipients=list(recipients),
                refs=list(refs), feedback=feedback, error=error)


PF_PER_MESSAGE = ("Reporting-MTA: dns; mail.example.net\nX-Postfix-Queue-ID: 4Z1abc\n"
                  f"X-Postfix-Sender: rfc822; {RP}\nArrival-Date: {DATE}")
PF_HUMAN = ("This is the mail system at host mail.example.net.\n\nI'm sorry to have to inform you that your message "
            "could not\nbe delivered to one or more recipients. It's attached below.\n\nFor further assistance, "
            "please send mail to postmaster.\n\nIf you do so, please include this problem report. You can\ndelete "
            "your own text from the attached returned message.\n\n                   The mail system\n")


def pf_rcpt(addr, action, status, diag, remote="mx.example.com"):
    out = f"Final-Recipient: rfc822; {addr}\nOriginal-Recipient: rfc822;{addr}\nAction: {action}\nStatus: {status}\n"
    if remote:
        out += f"Remote-MTA: dns; {remote}\n"
    if diag:
        out += f"Diagnostic-Code: {diag}"
    return out.rstrip("\n")


# ---- Postfix DSNs ----
dsn("postfix-user-unknown.eml", "Undelivered Mail Returned to Sender",
    PF_HUMAN + "\n<alice@example.com>: host mx.example.com[192.0.2.20] said: 550 5.1.1\n    <alice@example.com>: "
    "Recipient address rejected: User unknown in virtual mailbox\n    table (in reply to RCPT TO command)",
    PF_PER_MESSAGE,
    [pf_rcpt("alice@example.com", "failed", "5.1.1", "smtp; 550 5.1.1 <alice@example.com>: Recipient address\n"
             "    rejected: User unknown in virtual mailbox table")],
    original("alice@example.com", "t1.d101.Qm9v", "d101"), crlf=True,
    expect=expect("dsn", ["hard"], ["5.1.1"], ["alice@example.com"], ["t1.d101.Qm9v"]))

dsn("postfix-several-recipients.eml", "Undelivered Mail Returned to Sender", PF_HUMAN, PF_PER_MESSAGE,
    [pf_rcpt("bob@example.com", "failed", "5.1.1", "smtp; 550 5.1.1 <bob@example.com>: user unknown"),
     pf_rcpt("carol@example.org", "failed", "5.2.2", "smtp; 552 5.2.2 <carol@example.org>: Mailbox full",
             "mx.example.org"),
     pf_rcpt("dave@example.net", "failed", "4.4.1",
             "X-Postfix; connect to mx.example.net[192.0.2.30]:25: Connection timed out", None)],
    original("bob@example.com, carol@example.org, dave@example.net", "t1.d102.Zx9", "d102"),
    orig_type="text/rfc822-headers",
    expect=expect("dsn", ["hard", "soft", "soft"], ["5.1.1", "5.2.2", "4.4.1"],
                  ["bob@example.com", "carol@example.org", "dave@example.net"], ["t1.d102.Zx9"]))

dsn("postfix-delayed.eml", "Delayed Mail (still being retried)",
    "This is the mail system at host mail.example.net.\n\n####################################################"
    "\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n#####################################"
    "###############\n\nYour message could not be delivered for more than 4 hour(s).\nIt will be retried until it "
    "is 5 day(s) old.", PF_PER_MESSAGE,
    [pf_rcpt("erin@example.com", "delayed", "4.4.7", "X-Postfix; delivery temporarily suspended: connect to\n"
             "    mx.example.com[192.0.2.20]:25: Connection timed out", None) + f"\nWill-Retry-Until: {DATE}"],
    original("erin@example.com", "t1.d103.Aa1", "d103"), orig_type="text/rfc822-headers",
    expect=expect("dsn", ["delayed"], ["4.4.7"], ["erin@example.com"], ["t1.d103.Aa1"]))

dsn("postfix-delivered.eml", "Successful Mail Delivery Report",
    "This is the mail system at host mail.example.net.\n\nYour message was successfully delivered to the "
    "destination(s)\nlisted below.", PF_PER_MESSAGE,
    [pf_rcpt("frank@example.com", "delivered", "2.0.0", "smtp; 250 2.0.0 Ok: queued as 4Z9xyz")],
    original("frank@example.com", "t1.d104.Bb2", "d104"), orig_type="text/rfc822-headers",
    expect=expect("dsn", ["delivered"], ["2.0.0"], ["frank@example.com"], ["t1.d104.Bb2"]))

dsn("postfix-relayed.eml", "Successful Mail Delivery Report",
    "Your message was successfully relayed to the destination(s)\nlisted below. The destination may not send a "
    "further report.", PF_PER_MESSAGE,
    [pf_rcpt("grace@example.com", "relayed", "2.0.0", "smtp; 250 2.0.0 Ok: queued as 4Z9abc")],
    original("grace@example.com", "t1.d105.Cc3", "d105"), orig_type="text/rfc822-headers",
    expect=expect("dsn", ["delivered"], ["2.0.0"], ["grace@example.com"], ["t1.d105.Cc3"]))

dsn("sendmail-expanded.eml", "Return receipt", "The original message was received at " + DATE +
    "\nfrom news.example.com [192.0.2.10]\n\n   ----- The following addresses had successful delivery notifications "
    "-----\n<list@example.org>  (expanded: to multiple recipients)",
    "Reporting-MTA: dns; mail.example.org\nArrival-Date: " + DATE,
    ["Final-Recipient: RFC822; list@example.org\nAction: expanded (to multi-recipient alias)\nStatus: 2.0.0"],
    original("list@example.org", "t1.d106.Dd4", "d106"), orig_type="text/rfc822-headers",
    sender="Mail Delivery Subsystem <MAILER-DAEMON@mail.example.org>",
    expect=expect("dsn", ["delivered"], ["2.0.0"], ["list@example.org"], ["t1.d106.Dd4"]))

dsn("postfix-4xx-failed-after-retries.eml", "Undelivered Mail Returned to Sender", PF_HUMAN, PF_PER_MESSAGE,
    [pf_rcpt("heidi@example.com", "failed", "4.4.7", "X-Postfix; delivery temporarily suspended: lost connection\n"
             "    with mx.example.com[192.0.2.20] while receiving the initial server greeting", None)],
    original("heidi@example.com", "t1.d107.Ee5", "d107"),
    expect=expect("dsn", ["soft"], ["4.4.7"], ["heidi@example.com"], ["t1.d107.Ee5"]))

dsn("postfix-greylisted-failed.eml", "Undelivered Mail Returned to Sender", PF_HUMAN, PF_PER_MESSAGE,
    [pf_rcpt("ivan@example.com", "failed", "4.2.0", "smtp; 450 4.2.0 <ivan@example.com>: Recipient address\n"
             "    rejected: Greylisted, see https://postgrey.example/")],
    original("ivan@example.com", "t1.d108.Ff6", "d108"),
    expect=expect("dsn", ["soft"], ["4.2.0"], ["ivan@example.com"], ["t1.d108.Ff6"]))

dsn("postfix-unknown-domain-5.4.4.eml", "Undelivered Mail Returned to Sender", PF_HUMAN, PF_PER_MESSAGE,
    [pf_rcpt("judy@nowhere.example", "failed", "5.4.4", "X-Postfix; Host or domain name not found. Name service\n"
             "    error for name=nowhere.example type=AAAA: Host not found", None)],
    original("judy@nowhere.example", "t1.d109.Gg7", "d109"),
    expect=expect("dsn", ["hard"], ["5.4.4"], ["judy@nowhere.example"], ["t1.d109.Gg7"]))

dsn("postfix-unknown-domain-5.1.2.eml", "Undelivered Mail Returned to Sender", PF_HUMAN, PF_PER_MESSAGE,
    [pf_rcpt("kim@gone.example", "failed", "5.1.2", "smtp; 550 5.1.2 <kim@gone.example>: Recipient address\n"
             "    rejected: Domain not found")],
    original("kim@gone.example", "t1.d110.Hh8", "d110"),
    expect=expect("dsn", ["hard"], ["5.1.2"], ["kim@gone.example"], ["t1.d110.Hh8"]))

dsn("dovecot-quota-5.2.2.eml", "Undelivered Mail Returned to Sender", PF_HUMAN, PF_PER_MESSAGE,
    [pf_rcpt("lee@example.com", "failed", "5.2.2", "lmtp; 552 5.2.2 <lee@example.com> Quota exceeded (mailbox for\n"
             "    user is full)", "mail.example.com")],
    original("lee@example.com", "t1.d111.Ii9", "d111"),
    expect=expect("dsn", ["soft"], ["5.2.2"], ["lee@example.com"], ["t1.d111.Ii9"]))

dsn("disabled-5.2.1.eml", "Undelivered Mail Returned to Sender", PF_HUMAN, PF_PER_MESSAGE,
    [pf_rcpt("mike@example.com", "failed", "5.2.1", "smtp; 550 5.2.1 The email account that you tried to reach is\n"
             "    disabled.")],
    original("mike@example.com", "t1.d112.Jj0", "d112"),
    expect=expect("dsn", ["hard"], ["5.2.1"], ["mike@example.com"], ["t1.d112.Jj0"]))

dsn("spam-block-5.7.1.eml", "Undelivered Mail Returned to Sender", PF_HUMAN, PF_PER_MESSAGE,
    [pf_rcpt("nina@example.com", "failed", "5.7.1", "smtp; 554 5.7.1 Message rejected as spam by Content\n"
             "    Filtering.")],
    original("nina@example.com", "t1.d113.Kk1", "d113"),
    expect=expect("dsn", ["policy"], ["5.7.1"], ["nina@example.com"], ["t1.d113.Kk1"]))

# ---- Exim ----
EXIM_COPY = "------ This is a copy of the message, including all the headers. ------\n\n"
dsn("exim-dsn.eml", "Mail delivery failed: returning message to sender",
    "This message was created automatically by mail delivery software.\n\nA message that you sent could not be "
    "delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n"
    "  olga@example.com\n    host mx.example.com [192.0.2.20]\n    SMTP error from remote mail server after RCPT "
    "TO:<olga@example.com>:\n    550 5.1.1 <olga@example.com>: Recipient address rejected: User unknown",
    "Reporting-MTA: dns; mail.example.net",
    ["Action: failed\nFinal-Recipient: rfc822;olga@example.com\nStatus: 5.0.0\nRemote-MTA: dns; mx.example.com\n"
     "Diagnostic-Code: smtp; 550 5.1.1 <olga@example.com>: Recipient address rejected: User unknown"],
    original("olga@example.com", "t1.d114.Ll2", "d114"), orig_type="text/rfc822-headers",
    sender="Mail Delivery System <Mailer-Daemon@mail.example.net>",
    expect=expect("dsn", ["hard"], ["5.1.1"], ["olga@example.com"], ["t1.d114.Ll2"]))

write("exim-plain.eml",
      "Return-path: <>\nFrom: Mail Delivery System <Mailer-Daemon@mail.example.net>\nTo: " + RP + "\n"
      "Subject: Mail delivery failed: returning message to sender\nDate: " + DATE + "\n"
      "Message-Id: <E1abc-000123-AB@mail.example.net>\nAuto-Submitted: auto-replied\n\n"
      "This message was created automatically by mail delivery software.\n\nA message that you sent could not be "
      "delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n"
      "  pat@example.com\n    host mx.example.com [192.0.2.20]\n    SMTP error from remote mail server after RCPT "
      "TO:<pat@example.com>:\n    550 5.1.1 <pat@example.com>: Recipient address rejected: User unknown\n"
      "  quinn@example.org\n    host mx.example.org [192.0.2.21]\n    SMTP error from remote mail server after RCPT "
      "TO:<quinn@example.org>:\n    452 4.2.2 Mailbox full\n    retry timeout exceeded\n\n" + EXIM_COPY +
      original("pat@example.com, quinn@example.org", "t1.d115.Mm3", "d115"),
      expect=expect("plain-bounce", ["hard", "soft"], ["5.1.1", "4.2.2"], ["pat@example.com", "quinn@example.org"],
                    ["t1.d115.Mm3"]))

write("exim-delay-warning.eml",
      "Return-path: <>\nFrom: Mail Delivery System <Mailer-Daemon@mail.example.net>\nTo: " + RP + "\n"
      "Subject: Warning: message 1abcDE-000123-AB delayed 24 hours\nDate: " + DATE + "\n"
      "Auto-Submitted: auto-replied\n\n"
      "This message was created automatically by mail delivery software.\nA message that you sent has not yet been "
      "delivered to one or more of its\nrecipients after more than 24 hours on the queue on mail.example.net.\n\n"
      "The message identifier is:     1abcDE-000123-AB\n\nThe address(es) which have not yet been delivered are:\n\n"
      "  rita@example.com\n    Delay reason: SMTP error from remote mail server after RCPT TO:<rita@example.com>:\n"
      "    451 4.7.1 Greylisted, please try again later\n\nNo action is required on your part. Delivery attempts will "
      "continue for\nsome time, and this warning may be repeated at intervals if the message\nremains undelivered. "
      "Eventually the mail delivery software will give up,\nand when that happens, the message will be returned to "
      "you.\n\n------ This is a copy of the message's headers. ------\n\n" +
      headers_only(original("rita@example.com", "t1.d116.Nn4", "d116")),
      expect=expect("plain-bounce", ["delayed"], ["4.7.1"], ["rita@example.com"], ["t1.d116.Nn4"]))

# ---- Sendmail ----
dsn("sendmail-dsn.eml", "Returned mail: see transcript for details",
    "The original message was received at " + DATE + "\nfrom news.example.com [192.0.2.10]\n\n   ----- The following "
    "addresses had permanent fatal errors -----\n<sam@example.org>\n    (reason: 550 5.1.1 <sam@example.org>... User "
    "unknown)\n\n   ----- Transcript of session follows -----\n... while talking to mx.example.org.:\n>>> DATA\n<<< "
    "550 5.1.1 <sam@example.org>... User unknown\n550 5.1.1 <sam@example.org>... User unknown\n<<< 503 5.0.0 Need "
    "RCPT (recipient)",
    "Reporting-MTA: dns; mail.example.org\nReceived-From-MTA: DNS; news.example.com\nArrival-Date: " + DATE,
    ["Final-Recipient: RFC822; sam@example.org\nAction: failed\nStatus: 5.1.1\nRemote-MTA: DNS; mx.example.org\n"
     "Diagnostic-Code: SMTP; 550 5.1.1 <sam@example.org>... User unknown\nLast-Attempt-Date: " + DATE],
    original("sam@example.org", "t1.d117.Oo5", "d117"),
    sender="Mail Delivery Subsystem <MAILER-DAEMON@mail.example.org>",
    expect=expect("dsn", ["hard"], ["5.1.1"], ["sam@example.org"], ["t1.d117.Oo5"]))

write("sendmail-plain.eml",
      "From: Mail Delivery Subsystem <MAILER-DAEMON@mail.example.org>\nTo: <" + RP + ">\n"
      "Subject: Returned mail: User unknown\nDate: " + DATE + "\n\n"
      "The original message was received at " + DATE + "\nfrom news.example.com [192.0.2.10]\n\n"
      "   ----- The following addresses had permanent fatal errors -----\n<tom@example.org>\n    (reason: 550 5.1.1 "
      "<tom@example.org>... User unknown)\n\n   ----- Transcript of session follows -----\n... while talking to "
      "mx.example.org.:\n>>> RCPT To:<tom@example.org>\n<<< 550 5.1.1 <tom@example.org>... User unknown\n550 5.1.1 "
      "<tom@example.org>... User unknown\n\n   ----- Original message follows -----\n\n" +
      original("tom@example.org", "t1.d118.Pp6", "d118"),
      expect=expect("plain-bounce", ["hard"], ["5.1.1"], ["tom@example.org"], ["t1.d118.Pp6"]))

# ---- qmail ----
QMAIL = ("Hi. This is the qmail-send program at mail.example.com.\nI'm afraid I wasn't able to deliver your message "
         "to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n")
write("qmail.eml",
      "From: MAILER-DAEMON@mail.example.com\nTo: " + RP + "\nSubject: failure notice\nDate: " + DATE + "\n\n" + QMAIL +
      "<uma@example.com>:\n192.0.2.40 does not like recipient.\nRemote host said: 550 5.1.1 <uma@example.com>... User "
      "unknown\nGiving up on 192.0.2.40.\n\n--- Below this line is a copy of the message.\n\n" +
      original("uma@example.com", "t1.d119.Qq7", "d119"),
      expect=expect("plain-bounce", ["hard"], ["5.1.1"], ["uma@example.com"], ["t1.d119.Qq7"]))

write("qmail-local-no-mailbox.eml",
      "From: MAILER-DAEMON@mail.example.com\nTo: " + RP + "\nSubject: failure notice\nDate: " + DATE + "\n\n" + QMAIL +
      "<victor@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
      "--- Below this line is a copy of the message.\n\n" + original("victor@example.com", "t1.d120.Rr8", "d120"),
      expect=expect("plain-bounce", ["hard"], ["5.1.1"], ["victor@example.com"], ["t1.d120.Rr8"]))

# ---- Exchange / Office 365 ----
EXO_FROM = "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.example>"


def exo_human(addr, code, status, text):
    return (f"Your message to {addr} couldn't be delivered.\n\n{text}\n\nDiagnostic information for administrators:"
            f"\n\nGenerating server: BN6PR11MB1234.namprd11.prod.outlook.com\n\n{addr}\nRemote Server returned "
            f"'{code} {status} {text}'\n")


EXO_CASES = [
    ("5.1.10", "550", "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "hard"),
    ("5.4.1", "550", "Recipient address rejected: Access denied. AS(201806281)", "soft"),
    ("5.7.1", "550", "Service unavailable, Client host [192.0.2.10] blocked using Spamhaus", "policy"),
]
for i, (status, code, text, kind) in enumerate(EXO_CASES):
    addr = f"user{i}@contoso.example"
    ref = f"t1.d12{i}.Ex{i}"
    dsn(f"exchange-{status}-with-dsn.eml", "Undeliverable: So, what's up this week? Issue 12",
        exo_human(addr, code, status, text),
        "Reporting-MTA: dns;BN6PR11MB1234.namprd11.prod.outlook.com\nReceived-From-MTA: dns;news.example.com\n"
        "Arrival-Date: " + DATE,
        [f"Final-Recipient: rfc822;{addr}\nAction: failed\nStatus: {status}\nDiagnostic-Code: smtp;{code} {status} "
         f"{text}"],
        original(addr, ref, f"d12{i}"), sender=EXO_FROM, crlf=True,
        expect=expect("dsn", [kind], [status], [addr], [ref]))
    addr = f"plain{i}@contoso.example"
    ref = f"t1.d13{i}.Px{i}"
    write(f"exchange-{status}-without-dsn.eml",
          f"From: {EXO_FROM}\nTo: {RP}\nSubject: Undeliverable: So, what's up this week? Issue 12\nDate: {DATE}\n"
          "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nDelivery has failed to these recipients or "
          f"groups:\n\n{addr}<mailto:{addr}>\nThe email address you entered couldn't be found, or the message was "
          f"refused.\n\n" + exo_human(addr, code, status, text).split("\n\n", 1)[1] + "\n\nOriginal message headers:"
          "\n\n" + headers_only(original(addr, ref, f"d13{i}")), crlf=True,
          expect=expect("plain-bounce", [kind], [status], [addr], [ref]))

# ---- Gmail ----
GMAIL_FROM = "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"
GMAIL_PM = "Reporting-MTA: dns; googlemail.com\nReceived-From-MTA: dns; news.example.com\nArrival-Date: " + DATE


def gmail(name, addr, status, diag, human, kind, ref, action="failed"):
    dsn(name, "Delivery Status Notification (Failure)", human, GMAIL_PM,
        [f"Final-Recipient: rfc822; {addr}\nAction: {action}\nStatus: {status}\nRemote-MTA: dns; "
         "gmail-smtp-in.l.google.com. (142.250.1.27, the\n server for the domain gmail.com.)\nDiagnostic-Code: smtp; "
         + diag + "\nLast-Attempt-Date: " + DATE],
        original(addr, ref, name[:-4]), sender=GMAIL_FROM, crlf=True,
        expect=expect("dsn", [kind], [status], [addr], [ref]))


gmail("gmail-5.1.1.eml", "wendy@gmail.example", "5.1.1",
      "550-5.1.1 The email account that you tried to reach does not exist. Please try\n 550-5.1.1 double-checking the "
      "recipient's email address for typos or\n 550-5.1.1 unnecessary spaces. For more information, go to\n 550 5.1.1  "
      "https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp",
      "** Address not found **\n\nYour message wasn't delivered to wendy@gmail.example because the address couldn't be "
      "found, or is unable to receive mail.", "hard", "t1.d140.Gm1")
gmail("gmail-5.2.2-over-quota.eml", "xavier@gmail.example", "5.2.2",
      "552-5.2.2 The email account that you tried to reach is over quota. Please direct\n 552-5.2.2 the recipient to\n"
      " 552 5.2.2  https://support.google.com/mail/?p=OverQuotaPerm b2si456 - gsmtp",
      "** Message not delivered **\n\nYour message couldn't be delivered to xavier@gmail.example because the mailbox "
      "is full.", "soft", "t1.d141.Gm2")
gmail("gmail-5.7.26-dmarc.eml", "yara@gmail.example", "5.7.26",
      "550-5.7.26 Unauthenticated email from news.example.com is not accepted due to\n 550-5.7.26 domain's DMARC "
      "policy. Please contact the administrator of news.example.com\n 550 5.7.26 domain if this was a legitimate mail."
      " c3si789 - gsmtp",
      "** Message blocked **\n\nYour message to yara@gmail.example has been blocked. See technical details below for "
      "more information.", "policy", "t1.d142.Gm3")
gmail("gmail-4.7.0-unsolicited-failed.eml", "zoe@gmail.example", "4.7.0",
      "421-4.7.0 Our system has detected an unusual rate of unsolicited mail\n 421-4.7.0 originating from your IP "
      "address. To protect our users from spam,\n 421 4.7.0 mail sent from your IP address has been temporarily "
      "rate limited. - gsmtp",
      "** Message not delivered **\n\nThere was a temporary problem delivering your message to zoe@gmail.example. "
      "Gmail gave up after 5 days.", "policy", "t1.d143.Gm4")

# ---- Yahoo ----
YAHOO = ("Sorry, we were unable to deliver your message to the following address.\n\n")
write("yahoo-no-account.eml",
      "From: MAILER-DAEMON@yahoo.example\nTo: " + RP + "\nSubject: Failure Notice\nDate: " + DATE + "\n\n" + YAHOO +
      "<amy@yahoo.example>:\n554: delivery error: dd This user doesn't have a yahoo.example account (amy@yahoo.example)"
      " [0] - mta1012.mail.gq1.yahoo.example\n\n--- Below this line is a copy of the message.\n\n" +
      original("amy@yahoo.example", "t1.d150.Ya1", "d150"),
      expect=expect("plain-bounce", ["hard"], ["5.1.1"], ["amy@yahoo.example"], ["t1.d150.Ya1"]))
write("yahoo-disabled.eml",
      "From: MAILER-DAEMON@yahoo.example\nTo: " + RP + "\nSubject: Failure Notice\nDate: " + DATE + "\n\n" + YAHOO +
      "<ben@yahoo.example>:\n554: delivery error: dd Sorry your message to ben@yahoo.example cannot be delivered. This "
      "mailbox is disabled (554.30). - mta1013.mail.gq1.yahoo.example\n\n--- Below this line is a copy of the message."
      "\n\n" + original("ben@yahoo.example", "t1.d151.Ya2", "d151"),
      expect=expect("plain-bounce", ["hard"], ["5.2.1"], ["ben@yahoo.example"], ["t1.d151.Ya2"]))

# ---- Outlook.com ----
dsn("outlook-5.7.515.eml", "Undeliverable: So, what's up this week? Issue 12",
    exo_human("cleo@outlook.example", "550", "5.7.515", "Access denied, sending domain news.example.com doesn't meet "
              "the required authentication level."),
    "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.com\nArrival-Date: " + DATE,
    ["Final-Recipient: rfc822;cleo@outlook.example\nAction: failed\nStatus: 5.7.515\nDiagnostic-Code: smtp;550 5.7.515 "
     "Access denied, sending domain news.example.com doesn't meet the\n required authentication level."],
    original("cleo@outlook.example", "t1.d152.Ol1", "d152"), sender=EXO_FROM,
    expect=expect("dsn", ["policy"], ["5.7.515"], ["cleo@outlook.example"], ["t1.d152.Ol1"]))

write("plain-mailbox-unavailable.eml",
      "From: Mail Delivery Subsystem <postmaster@mail.example.org>\nTo: " + RP + "\nSubject: Delivery failure\n"
      "Date: " + DATE + "\n\nYour message could not be delivered.\n\n  dan@example.org\n    550 Requested action not "
      "taken: mailbox unavailable\n",
      expect=expect("plain-bounce", ["soft"], ["5.2.0"], ["dan@example.org"], []))

write("plain-unusual-sender.eml",
      "From: Corp Mail Gateway <gateway@corp.example>\nTo: " + RP + "\nSubject: Delivery failure notice\n"
      "Date: " + DATE + "\n\nYour mail to zed@corp.example was refused.\nReason: 550 5.1.1 mailbox does not exist\n",
      expect=expect("plain-bounce", ["hard"], ["5.1.1"], ["zed@corp.example"], []))

# ---- ARF complaints ----
def arf(name, sender, feedback_fields, orig, orig_type="message/rfc822", human=None, expect=None, crlf=False):
    b = "=_arf_" + name.replace(".", "_")
    human = human or ("This is an email abuse report for an email message received from IP 192.0.2.10 on " + DATE)
    content = orig if orig_type == "message/rfc822" else headers_only(orig)
    text = (f"From: {sender}\nTo: fbl@news.example.com\nSubject: Abuse report\nDate: {DATE}\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=feedback-report; boundary=\"{b}\"\n\n--{b}\n"
            f"Content-Type: text/plain; charset=us-ascii\n\n{human}\n\n--{b}\nContent-Type: message/feedback-report\n\n"
            f"{feedback_fields}\n\n--{b}\nContent-Type: {orig_type}\n\n{content}\n--{b}--\n")
    write(name, text, crlf, expect)


arf("arf-yahoo-cfl.eml", "Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.example>",
    "Feedback-Type: abuse\nUser-Agent: Yahoo!-Mail-Feedback/2.0\nVersion: 0.1\nOriginal-Mail-From: <" + RP + ">\n"
    "Arrival-Date: " + DATE + "\nSource-IP: 192.0.2.10\nReported-Domain: news.example.com\n"
    "Authentication-Results: mta1.mail.yahoo.example from=news.example.com; domainkeys=neutral; dkim=pass",
    original("redacted", "t1.d160.Fb1", "d160"),
    expect=expect("feedback", ["complaint"], [], [None], ["t1.d160.Fb1"], feedback="abuse"))
arf("arf-aol.eml", "scomp@aol.example",
    "Feedback-Type: abuse\nUser-Agent: AOL SComp\nVersion: 0.1\nReceived-Date: " + DATE + "\nSource-IP: 192.0.2.10\n"
    "Reported-Domain: news.example.com\nOriginal-Rcpt-To: eve@aol.example\nOriginal-Mail-From: " + RP,
    original("eve@aol.example", "t1.d161.Fb2", "d161"), crlf=True,
    expect=expect("feedback", ["complaint"], [], ["eve@aol.example"], ["t1.d161.Fb2"], feedback="abuse"))
arf("arf-microsoft-jmrp.eml", "staff@hotmail.example",
    "Feedback-Type: abuse\nUser-Agent: Microsoft JMRP\nVersion: 1\nSource-IP: 192.0.2.10\nArrival-Date: " + DATE,
    original("fay@hotmail.example", "t1.d162.Fb3", "d162", "X-HmXmrOriginalRecipient: <fay@hotmail.example>\n"),
    expect=expect("feedback", ["complaint"], [], ["fay@hotmail.example"], ["t1.d162.Fb3"], feedback="abuse"))
arf("arf-generic-redacted-headers.eml", "abuse@isp.example",
    "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\nOriginal-Rcpt-To: redacted\n"
    "Reported-Domain: news.example.com",
    original("[redacted]", "t1.d163.Fb4", "d163"), orig_type="text/rfc822-headers",
    expect=expect("feedback", ["complaint"], [], [None], ["t1.d163.Fb4"], feedback="abuse"))
arf("arf-fraud.eml", "abuse@isp.example",
    "Feedback-Type: fraud\nUser-Agent: SomeGenerator/1.0\nVersion: 1\nOriginal-Rcpt-To: <gus@isp.example>",
    original("gus@isp.example", "t1.d164.Fb5", "d164"), orig_type="text/rfc822-headers",
    expect=expect("feedback", ["complaint"], [], ["gus@isp.example"], ["t1.d164.Fb5"], feedback="fraud"))
arf("arf-other.eml", "abuse@isp.example",
    "Feedback-Type: other\nUser-Agent: SomeGenerator/1.0\nVersion: 1",
    original("hal@isp.example", "t1.d165.Fb6", "d165"),
    expect=expect("feedback", ["complaint"], [], ["hal@isp.example"], ["t1.d165.Fb6"], feedback="other"))
arf("arf-auth-failure.eml", "dmarc-reports@isp.example",
    "Feedback-Type: auth-failure\nUser-Agent: DMARC-Failure-Reporter/1.0\nVersion: 1\nAuth-Failure: dmarc\n"
    "Original-Mail-From: " + RP + "\nReported-Domain: news.example.com",
    original("ida@isp.example", "t1.d166.Fb7", "d166"), orig_type="text/rfc822-headers",
    human="This is a DMARC failure report for an email message received on " + DATE,
    expect=expect("feedback", ["policy"], [], ["ida@isp.example"], ["t1.d166.Fb7"], feedback="auth-failure"))

b = "=_jmrp_attached"
write("jmrp-attached-original.eml",
      "From: staff@hotmail.example\nTo: fbl@news.example.com\nSubject: complaint about message from 192.0.2.10\n"
      "Date: " + DATE + "\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"" + b + "\"\n\n--" + b + "\n"
      "Content-Type: text/plain\n\nThis is an email abuse report for an email message received from IP 192.0.2.10 on "
      + DATE + "\n\n--" + b + "\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n" +
      original("jon@hotmail.example", "t1.d167.Fb8", "d167",
               "X-HmXmrOriginalRecipient: <jon@hotmail.example>\n") + "\n--" + b + "--\n",
      expect=expect("feedback", ["complaint"], [], ["jon@hotmail.example"], ["t1.d167.Fb8"], feedback="abuse"))

# ---- Auto-replies ----
def reply(name, headers, subject, body, sender="Kate Person <kate@example.com>", expect=None, raw_subject=None):
    subj = raw_subject or subject
    write(name, f"From: {sender}\nTo: digest@news.example.com\nSubject: {subj}\nDate: {DATE}\n"
          f"Message-ID: <{name}@example.com>\nIn-Reply-To: <d170@news.example.com>\n{headers}"
          f"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}\n",
          expect=expect)


reply("autoreply-auto-submitted.eml", "Auto-Submitted: auto-replied\n", "Re: So, what's up this week? Issue 12",
      "I am away until December 7. My mailbox is full of unread mail, so please be patient.\n"
      "550 5.2.2 mailbox full is what you'd get if I were a server.",
      expect=expect("auto-reply", ["auto-reply"], [None], ["kate@example.com"], []))
reply("autoreply-x-autoreply.eml", "X-Autoreply: yes\n", "Away",
      "Thanks for your message. I am travelling without access to email.",
      sender="leo@example.com", expect=expect("auto-reply", ["auto-reply"], [None], ["leo@example.com"], []))
reply("autoreply-precedence.eml", "Precedence: auto_reply\n", "Re: So, what's up this week?",
      "Your message has been received. We'll get back to you within two business days.",
      sender="Support <support@example.com>", expect=expect("auto-reply", ["auto-reply"], [None],
                                                             ["support@example.com"], []))
reply("autoreply-german.eml", "X-Auto-Response-Suppress: All\n",
      "Abwesenheitsnotiz: So, what's up this week? Issue 12",
      "Vielen Dank für Ihre Nachricht. Ich bin bis zum 7. Dezember nicht im Büro.\n"
      "> X-Tidings-Ref: t1.d170.Au1", sender="Max Mustermann <max@example.de>",
      expect=expect("auto-reply", ["auto-reply"], [None], ["max@example.de"], ["t1.d170.Au1"]))
reply("autoreply-french.eml", "", "", "Je suis absente du bureau jusqu'au 7 décembre.",
      sender="Nadia <nadia@example.fr>",
      raw_subject="=?utf-8?q?R=C3=A9ponse_automatique_=3A_So=2C_what=27s_up_this_week=3F?=",
      expect=expect("auto-reply", ["auto-reply"], [None], ["nadia@example.fr"], []))
reply("challenge-response.eml", "", "Please confirm you are human: your message to oscar@example.com is on hold",
      "Hello! I use a challenge-response system to keep spam out. Your message is on hold.\n"
      "Click https://verify.example/c/123 so your message is delivered.", sender="oscar@example.com",
      expect=expect("auto-reply", ["auto-reply"], [None], ["oscar@example.com"], []))
reply("autoreply-suppress-only-is-not-one.eml", "Auto-Submitted: no\nX-Auto-Response-Suppress: All\n",
      "Re: So, what's up this week? Issue 12", "Great issue, thanks! My mailbox is full of newsletters but I read yours.",
      sender="paula@example.com", expect=expect("unrecognised"))
reply("ordinary-reply.eml", "", "Re: So, what's up this week? Issue 12",
      "Loved the piece on trains.\n\nOn Mon, Tidings Weekly wrote:\n> Hello, here is this week's issue.",
      sender="rob@example.com", expect=expect("unrecognised"))

# ---- Malformed ----
full = open(os.path.join(HERE, "postfix-user-unknown.eml"), "rb").read()
cut = full.index(b"Remote-MTA")
write("malformed-truncated-boundary.eml", "", raw=full[:cut],
      expect=expect("dsn", ["hard"], ["5.1.1"], ["alice@example.com"], []))

b = "=_missing_status"
write("malformed-missing-delivery-status.eml",
      "From: MAILER-DAEMON@mail.example.net (Mail Delivery System)\nTo: " + RP + "\n"
      "Subject: Undelivered Mail Returned to Sender\nDate: " + DATE + "\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"" + b + "\"\n\n--" + b + "\n"
      "Content-Type: text/plain\n\n" + PF_HUMAN + "\n<sue@example.com>: host mx.example.com[192.0.2.20] said: 550 "
      "5.1.1\n    <sue@example.com>: Recipient address rejected: User unknown (in reply to RCPT\n    TO command)\n\n--"
      + b + "\nContent-Type: message/rfc822\n\n" + original("sue@example.com", "t1.d180.Mf1", "d180") + "\n--" + b +
      "--\n",
      expect=expect("plain-bounce", ["hard"], ["5.1.1"], ["sue@example.com"], ["t1.d180.Mf1"]))

rng = random.Random(11)
write("malformed-garbage.eml", "", raw=bytes([0]) + bytes(rng.randrange(256) for _ in range(4096)),
      expect=expect("error", error="no-headers"))
write("malformed-whitespace-only.eml", "", raw=b"\r\n \r\n\t\r\n",
      expect=expect("error", error="empty"))

eight_bit = (b"From: \xc9quipe \xe9lectronique <MAILER-DAEMON@mail.example.fr>\nTo: " + RP.encode() +
             b"\nSubject: Non remis: \xe9chec \xff\xfe de remise\nX-Junk: \x80\x81\x82\x00\x01\n"
             b"Date: " + DATE.encode() + b"\nMIME-Version: 1.0\n"
             b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"8bit\"\n\n--8bit\n"
             b"Content-Type: text/plain\n\nLe message n'a pas pu \xeatre remis.\n\n--8bit\n"
             b"Content-Type: message/delivery-status\n\nReporting-MTA: dns; mail.example.fr\n\n"
             b"Final-Recipient: rfc822; t\xe9o@example.fr\nFinal-Recipient: rfc822; theo@example.fr\nAction: failed\n"
             b"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 utilisateur inconnu \xe9\xe8\n\n--8bit\n"
             b"Content-Type: text/rfc822-headers\n\n" +
             headers_only(original("theo@example.fr", "t1.d181.Eb1", "d181")).encode() + b"\n--8bit--\n")
write("malformed-8bit-junk-headers.eml", "", raw=eight_bit,
      expect=expect("dsn", ["hard"], ["5.1.1"], ["t\ufffdo@example.fr"], ["t1.d181.Eb1"]))

nested = original("tess@example.com", "t1.d182.Deep30", "deep30")
for level in range(29, 0, -1):
    nested = (f"From: relay{level}@example.com\nSubject: level {level}\nX-Tidings-Ref: t1.level{level}\n"
              f"MIME-Version: 1.0\nContent-Type: message/rfc822\n\n" + nested)
write("malformed-deeply-nested.eml",
      "From: MAILER-DAEMON@mail.example.net\nTo: " + RP + "\nSubject: Undelivered Mail Returned to Sender\n"
      "Date: " + DATE + "\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"nest\"\n\n--nest\n"
      "Content-Type: text/plain\n\nThis is the mail system at host mail.example.net.\n\n  tess@example.com\n"
      "    550 5.1.1 user unknown\n\n--nest\nContent-Type: message/rfc822\n\n" + nested + "\n--nest--\n",
      expect=expect("plain-bounce", ["hard"], ["5.1.1"], ["tess@example.com"], ["t1.level1"]))

junk = "X-Junk: " + "\n ".join("j" * 70 for _ in range(1500)) + "\n"
huge_orig = original("uri@example.com", "t1.d183.Huge", "d183", junk)
dsn("malformed-huge-header.eml", "Undelivered Mail Returned to Sender", PF_HUMAN, PF_PER_MESSAGE,
    [pf_rcpt("uri@example.com", "failed", "5.1.1", "smtp; 550 5.1.1 <uri@example.com>: user unknown")],
    huge_orig, orig_type="text/rfc822-headers", extra_headers=junk,
    expect=expect("dsn", ["hard"], ["5.1.1"], ["uri@example.com"], ["t1.d183.Huge"]))


# ---- Real Postfix DSNs ----
# Not written here: produced once by Debian's Postfix 3.7.11 (its own config directory, no network listener,
# `sendmail -C dir -N ... -R full|hdrs`), bouncing to a virtual mailbox: unknown virtual users give 5.1.1, and
# a transport map sends `gone.example` to `error:5.1.2 Host or domain name not found...`, `full.example` to
# `error:5.2.2 Mailbox full...`, `blocked.example` to `error:5.7.1 ...spam...` and `slow.example` to
# `retry:4.4.1 Connection timed out` with `maximal_queue_lifetime = 0` (so it fails at once, as after retries).
REAL = [
    ("postfix-real-user-unknown.eml",
     expect("dsn", ["hard"], ["5.1.1"], ["alice@example.com"], ["t1.real01.Sig"])),
    ("postfix-real-several-recipients.eml",
     expect("dsn", ["hard", "hard", "soft", "policy"], ["5.1.2", "5.1.1", "5.2.2", "5.7.1"],
            ["dave@gone.example", "bob@example.com", "carol@full.example", "erin@blocked.example"],
            ["t1.real02.Sig"])),
    ("postfix-real-4xx-expired.eml",
     expect("dsn", ["soft"], ["4.4.1"], ["frank@slow.example"], ["t1.real03.Sig"])),
    ("postfix-real-delivered.eml",
     expect("dsn", ["delivered"], ["2.0.0"], ["keep@example.com"], ["t1.real04.Sig"])),
    ("postfix-real-headers-only.eml",
     expect("dsn", ["hard", "soft"], ["5.1.1", "5.2.2"], ["gina@example.com", "hank@full.example"],
            ["t1.real05.Sig"])),
    # Exim 4.96 (Debian), after a remote 550 5.1.1: its DSN says only `Status: 5.0.0` and no Diagnostic-Code; the
    # remote reply is in the text for people, under the address.
    ("exim-real-generic-status.eml",
     expect("dsn", ["hard"], ["5.1.1"], ["dead1@example.com"], ["abc"])),
]
for name, e in REAL:
    assert os.path.exists(os.path.join(HERE, name)), name
    entries.append((name, e))


def toml_str(v):
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


with open(os.path.join(HERE, "expected.toml"), "w") as f:
    f.write("# What each message in this directory must read as. Written by hand in generate.py, never by the parser.\n"
            "# recipients: \"\" stands for no address (None). error: \"empty\" or \"no-headers\".\n")
    for name, e in entries:
        f.write(f"\n[[report]]\nfile = {toml_str(name)}\nform = {toml_str(e['form'])}\n")
        if e["error"]:
            f.write(f"error = {toml_str(e['error'])}\n")
            continue
        f.write("kinds = [" + ", ".join(toml_str(k) for k in e["kinds"]) + "]\n")
        if e["statuses"]:
            f.write("statuses = [" + ", ".join(toml_str(s or "") for s in e["statuses"]) + "]\n")
        f.write("recipients = [" + ", ".join(toml_str(r or "") for r in e["recipients"]) + "]\n")
        f.write("trace_refs = [" + ", ".join(toml_str(r) for r in e["refs"]) + "]\n")
        if e["feedback"]:
            f.write(f"feedback_type = {toml_str(e['feedback'])}\n")
print(len(entries), "messages")
