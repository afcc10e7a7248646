#!/usr/bin/env python3
"""A real SMTP server for the tests: accepts every mail and keeps it.

Usage: smtp_sink.py DIRECTORY

Listens on a free port of 127.0.0.1 and prints "listening on PORT" once it
accepts connections. Each mail received becomes, in DIRECTORY:
  N.eml   the message exactly as received;
  N.txt   its headers (decoded, one per line), a blank line, and its plain
          text body decoded from its transfer encoding;
  N.rcpt  the envelope recipients, one per line, written last (by rename),
          so a reader that sees it finds the other two complete.
Exits when its standard input closes (the test process ended) or on SIGTERM.
"""

import asyncio
import email
import email.policy
import itertools
import os
import sys
import threading

from aiosmtpd.smtp import SMTP


class Sink:
    """aiosmtpd handler writing each mail to the directory."""

    def __init__(self, directory):
        self.directory = directory
        self.numbers = itertools.count(1)

    def path(self, number, suffix):
        return os.path.join(self.directory, f"{number}.{suffix}")

    async def handle_DATA(self, server, session, envelope):
        number = next(self.numbers)
        raw = envelope.original_content or envelope.content
        with open(self.path(number, "eml"), "wb") as out:
            out.write(raw)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        with open(self.path(number, "txt"), "w", encoding="utf-8") as out:
            for name, value in message.items():
                out.write(f"{name}: {value}\n")
            out.write("\n")
            out.write(body.get_content() if body is not None else "")
        partial = self.path(number, "rcpt.partial")
        with open(partial, "w", encoding="utf-8") as out:
            out.write("".join(f"{rcpt}\n" for rcpt in envelope.rcpt_tos))
        os.rename(partial, self.path(number, "rcpt"))
        return "250 OK"


def exit_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


async def main(directory):
    os.makedirs(directory, exist_ok=True)
    handler = Sink(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test"), host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    asyncio.run(main(sys.argv[1]))
