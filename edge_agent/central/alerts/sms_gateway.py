"""SMS through an HTTP gateway: one POST per message. Operators' APIs differ, so the body
is a template (`[alerts.sms] fields`, with `{to}` and `{text}`), sent as JSON or as a
form; any 2xx answer is a delivery, anything else (or no answer) an attempt to retry.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

from edge_agent.central.alerts import DeliveryFailed
from edge_agent.central.config import SmsConfig


class SmsGatewaySender:
    channel = "sms"

    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        self.context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)

    def body(self, recipient: str, text: str) -> tuple[bytes, str]:
        """The request body and its content type."""
        fields = {k: v.replace("{to}", recipient).replace("{text}", text) for k, v in self.config.fields.items()}
        if self.config.format == "json":
            return json.dumps(fields, ensure_ascii=False).encode(), "application/json"
        return urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"

    def send(self, recipient: str, subject: str, body: str) -> None:
        data, content_type = self.body(recipient, body)
        request = urllib.request.Request(self.config.url, data=data, method="POST",
                                         headers={"Content-Type": content_type, **self.config.headers})
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s,
                                        context=self.context if self.config.url.startswith("https") else None) as r:
                status = r.status
        except urllib.error.HTTPError as err:
            raise DeliveryFailed(f"SMS gateway answered {err.code} {err.reason}") from err
        except (urllib.error.URLError, OSError) as err:
            raise DeliveryFailed(f"SMS gateway unreachable: {getattr(err, 'reason', err)}") from err
        if not 200 <= status < 300:
            raise DeliveryFailed(f"SMS gateway answered {status}")
