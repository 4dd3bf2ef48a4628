"""E-mail through the administration's relay: SMTP submission upgraded with STARTTLS
(RFC 3207) before anything else is said, the relay's certificate checked against the
configured CA, then AUTH if a user is configured (RFC 4954). A relay that offers no
STARTTLS gets nothing: an alert names trucks and declarations.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from edge_agent.central.alerts import DeliveryFailed
from edge_agent.central.config import SmtpConfig


class SmtpSender:
    channel = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        self.password = config.password_file.read_text(encoding="utf-8").strip() if config.password_file else ""

    def send(self, recipient: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = recipient
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=self.config.sender.partition("@")[2] or None)
        message.set_content(body)
        try:
            with smtplib.SMTP(self.config.host, self.config.port, timeout=self.config.timeout_s) as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise DeliveryFailed(f"the relay {self.config.host} offers no STARTTLS: not sending in clear")
                smtp.starttls(context=self.context)
                smtp.ehlo()
                if self.config.username:
                    smtp.login(self.config.username, self.password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as err:  # ssl.SSLError is an OSError
            raise DeliveryFailed(f"SMTP {self.config.host}:{self.config.port}: {err}") from err
