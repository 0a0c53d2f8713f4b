"""A real SMTP server for roost's tests (aiosmtpd on 127.0.0.1, a free port).

Prints its port on the first line of stdout, then writes every message it accepts to
OUT_DIR/NNNNNN.json: the envelope, the decoded headers and the text and HTML parts, parsed by
Python's own email package (independent of the mail builder under test). While OUT_DIR/FAIL
exists it answers DATA with a transient 451, so tests can watch roost retry.
"""
import asyncio
import email
import json
import os
import sys
from email import policy

from aiosmtpd.smtp import SMTP

OUT = sys.argv[1]
count = 0


class Handler:
    async def handle_DATA(self, server, session, envelope):
        global count
        if os.path.exists(os.path.join(OUT, "FAIL")):
            return "451 4.3.0 Try again later"
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        count += 1
        path = os.path.join(OUT, "%06d.json" % count)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler(), hostname="127.0.0.1"), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
