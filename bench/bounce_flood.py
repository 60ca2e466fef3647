#!/usr/bin/env python3
"""Load driver for bench/bounces.sh: delivers one distinct DSN per outbox message to the report listener.

Usage: bounce_flood.py PORT CONNECTIONS BOUNCE_DOMAIN FILE...

Each .eml file is one message Tidings wrote (the outbox transport); its X-Tidings-Ref header is the token of its
signed return path, so the DSN about it goes to bounces+TOKEN@BOUNCE_DOMAIN, as an MTA's bounce would. The DSNs
are built before the clock starts. CONNECTIONS sessions run at once, each with PIPELINING (MAIL, RCPT and DATA in
one write, then the message and its final dot). Prints: messages, seconds from the first connect to the last 250,
rate, and how many got no 250.
"""
import asyncio
import sys
import time


def dsn(raw: bytes, n: int, domain: str):
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    trace = rcpt = None
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "x-tidings-ref":
            trace = value.strip()
        elif name.lower() == "to" and rcpt is None:
            rcpt = value.strip().split("<")[-1].rstrip(">")
    if not trace:
        raise SystemExit("an outbox message has no X-Tidings-Ref header: is [bounces] address set?")
    return_path = f"bounces+{trace}@{domain}"
    body = (
        f"From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\nTo: {return_path}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bench{n}.{time.time_ns()}@mx.example.org>\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n\r\n'
        "--B1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host mx.example.org. Your message could not be delivered.\r\n\r\n"
        "--B1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <recipient>: Recipient address rejected: User unknown\r\n\r\n"
        f"--B1\r\nContent-Type: text/rfc822-headers\r\n\r\n{head}\r\n\r\n--B1--\r\n"
    )
    lines = body.split("\r\n")
    stuffed = "\r\n".join("." + l if l.startswith(".") else l for l in lines).encode()
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return return_path, stuffed + b".\r\n"


async def reply(reader):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


async def session(port, work, failed):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reply(reader)
    writer.write(b"EHLO bench.example.net\r\n")
    await reply(reader)
    for rcpt, message in work:
        writer.write(f"MAIL FROM:<>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        mail, to, data = await reply(reader), await reply(reader), await reply(reader)
        if not data.startswith(b"354"):
            failed.append((mail, to, data))
            continue
        writer.write(message)
        done = await reply(reader)
        if not done.startswith(b"250"):
            failed.append(done)
    writer.write(b"QUIT\r\n")
    await writer.drain()
    writer.close()


async def main():
    port, connections, domain = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    reports = [dsn(open(path, "rb").read(), n, domain) for n, path in enumerate(sys.argv[4:])]
    failed = []
    start = time.perf_counter()
    await asyncio.gather(*(session(port, reports[i::connections], failed) for i in range(connections)))
    seconds = time.perf_counter() - start
    print(f"{len(reports)} {seconds:.3f} {len(reports) / seconds:.0f} {len(failed)}")
    if failed:
        print(f"first refusal: {failed[0]}", file=sys.stderr)


asyncio.run(main())
