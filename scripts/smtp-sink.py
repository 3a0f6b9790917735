#!/usr/bin/env python3
"""A real SMTP server for the test suite (aiosmtpd) that keeps what it receives.

Every message is written to DIR/<envelope sender>/<n>.eml, with one `X-Envelope-To:` line per
recipient before the message itself, so that concurrent tests (each gateway sends from its own
address) read only their own mail. Clients must authenticate (AUTH PLAIN/LOGIN) with the test
login and password given on the command line; plain-text AUTH is allowed: loopback only.

    smtp-sink.py PORT DIR LOGIN PASSWORD
"""
import asyncio
import itertools
import os
import re
import signal
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, root, login, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
counter = itertools.count(1)


class Keep:
    async def handle_DATA(self, server, session, envelope):
        sender = re.sub(r"[^A-Za-z0-9@._-]", "_", envelope.mail_from or "unknown") or "unknown"
        folder = os.path.join(root, sender)
        os.makedirs(folder, exist_ok=True)
        name = f"{next(counter):08d}"
        temporary = os.path.join(folder, f".{name}.tmp")
        with open(temporary, "wb") as out:
            for rcpt in envelope.rcpt_tos:
                out.write(f"X-Envelope-To: {rcpt}\r\n".encode())
            out.write(envelope.original_content or envelope.content)
        os.rename(temporary, os.path.join(folder, f"{name}.eml"))
        return "250 kept"


def authenticate(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == login and auth_data.password.decode() == password:
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False)


controller = Controller(
    Keep(),
    hostname="127.0.0.1",
    port=port,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=False,
)
controller.start()
print(f"listening on 127.0.0.1:{port}", flush=True)
stop = asyncio.Event()


async def main():
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


asyncio.run(main())
controller.stop()
