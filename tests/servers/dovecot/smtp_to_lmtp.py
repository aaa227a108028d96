#!/usr/bin/env python3
"""SMTP-to-LMTP bridge for the test Dovecot.

Dovecot's submission service relays over SMTP, and its LMTP server refuses EHLO, so this bridge
listens on 127.0.0.1 for the relayed SMTP session and replays it over LMTP: mail submitted by user A
lands in user B's INBOX. One LMTP session per SMTP session; LMTP's per-recipient replies after DATA
are folded into the single reply SMTP expects. Test infrastructure only.

Usage: smtp_to_lmtp.py <listen port> <lmtp port>
"""

import asyncio
import sys


async def read_reply(reader):
    """Reads one (possibly multi-line) reply; returns its lines."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("LMTP server closed the connection")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return lines


def is_ok(lines):
    return lines[-1][:1] in (b"2", b"3")


async def session(client_r, client_w, lmtp_port):
    lmtp_r, lmtp_w = await asyncio.open_connection("127.0.0.1", lmtp_port)
    try:
        await read_reply(lmtp_r)
        client_w.write(b"220 localhost SMTP-to-LMTP bridge ready\r\n")
        await client_w.drain()
        accepted = 0
        while True:
            line = await client_r.readline()
            if not line:
                return
            verb = line.split(b" ", 1)[0].strip().upper()

            async def forward(raw):
                lmtp_w.write(raw)
                await lmtp_w.drain()
                return await read_reply(lmtp_r)

            if verb in (b"EHLO", b"HELO"):
                await forward(b"LHLO bridge\r\n")
                if verb == b"EHLO":
                    reply = b"250-localhost\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
                else:
                    reply = b"250 localhost\r\n"
                client_w.write(reply)
            elif verb in (b"MAIL", b"NOOP"):
                client_w.write(b"".join(await forward(line)))
            elif verb == b"RSET":
                accepted = 0
                client_w.write(b"".join(await forward(line)))
            elif verb == b"RCPT":
                reply = await forward(line)
                if reply[-1][:1] == b"2":
                    accepted += 1
                client_w.write(b"".join(reply))
            elif verb == b"DATA":
                if accepted == 0:
                    client_w.write(b"554 5.5.1 No valid recipients\r\n")
                    await client_w.drain()
                    continue
                reply = await forward(line)
                client_w.write(b"".join(reply))
                await client_w.drain()
                if not is_ok(reply):
                    continue
                # The message is dot-stuffed the same way in both protocols: copy it as it is.
                while True:
                    data = await client_r.readline()
                    if not data:
                        return
                    lmtp_w.write(data)
                    if data in (b".\r\n", b".\n"):
                        break
                await lmtp_w.drain()
                replies = [await read_reply(lmtp_r) for _ in range(accepted)]
                accepted = 0
                failed = [r for r in replies if r[-1][:1] != b"2"]
                client_w.write(b"".join(failed[0]) if failed else b"250 2.0.0 Delivered\r\n")
            elif verb == b"QUIT":
                lmtp_w.write(b"QUIT\r\n")
                client_w.write(b"221 2.0.0 Bye\r\n")
                await client_w.drain()
                return
            else:
                client_w.write(b"502 5.5.1 Command not supported by the bridge\r\n")
            await client_w.drain()
    except (ConnectionError, OSError) as e:
        print(f"bridge session failed: {e}", file=sys.stderr)
    finally:
        lmtp_w.close()
        client_w.close()


async def main():
    listen_port, lmtp_port = int(sys.argv[1]), int(sys.argv[2])
    server = await asyncio.start_server(
        lambda r, w: session(r, w, lmtp_port), "127.0.0.1", listen_port
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
