"""Peer for the sync benchmark: Python's imaplib reads every message of a mailbox with one
`UID FETCH 1:* BODY.PEEK[]` over implicit TLS (XOAUTH2), trusting the test CA, and prints one
JSON line: messages, bytes, seconds, CPU seconds (user + system) and peak RSS.

usage: python3 imaplib_fetch.py HOST PORT CA_FILE USER ACCESS_TOKEN"""
import imaplib
import json
import resource
import ssl
import sys
import time

host, port, ca, user, token = sys.argv[1:6]
started = time.monotonic()
cpu0 = resource.getrusage(resource.RUSAGE_SELF)
ctx = ssl.create_default_context(cafile=ca)
imap = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
auth = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
imap.authenticate("XOAUTH2", lambda _: auth)
imap.select("INBOX", readonly=True)
typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
messages = 0
size = 0
for part in data:
    if isinstance(part, tuple):
        messages += 1
        size += len(part[1])
del data
imap.logout()
elapsed = time.monotonic() - started
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
print(json.dumps({"peer": "python imaplib", "messages": messages, "bytes": size,
                  "seconds": elapsed, "cpu_seconds": cpu, "peak_rss_kb": cpu1.ru_maxrss}))
