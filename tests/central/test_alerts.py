"""Alerts: a stored hit naming notify targets reaches them by e-mail through a real SMTP
relay with STARTTLS (aiosmtpd on loopback, a certificate from the project's own
make-certs.sh) and by SMS through a real HTTP gateway (http.server on loopback); retries
with backoff, a logged, counted failure, no duplicate for a hit received twice, the rate
limit, and `central alerts`."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from testkit.processes import REPO, serve_central
from testkit.waiting import wait_for

from edge_agent.central.alerts.dispatcher import Dispatcher, full_jitter_s
from edge_agent.central.alerts.message import planner
from edge_agent.central.cli import central
from edge_agent.central.config import AlertsConfig, load_hub_config
from edge_agent.central.ledger import Ledger
from edge_agent.central.mosquitto import free_port
from edge_agent.ids import new_id
from edge_agent.sync import topics


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", str(REPO / "firmware_config" / "mosquitto" / "make-certs.sh"), str(out)],
                   check=True, capture_output=True, timeout=60)
    return out


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []  # (envelope from, to, content)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture()
def relay(certs):
    """A real SMTP relay on loopback that speaks only after STARTTLS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "broker.crt", certs / "broker.key")
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True)
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture()
def plain_relay():
    """A relay that offers no STARTTLS: the hub must not send to it."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


class Gateway:
    """An SMS gateway on loopback: records each POST and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: list[tuple[str, bytes]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gateway.posts.append((self.headers.get("Content-Type", ""), body))
                self.send_response(gateway.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def gateway():
    g = Gateway()
    yield g
    g.close()


def alerts_config(certs: Path, smtp_port: int, sms_url: str, **extra) -> AlertsConfig:
    return AlertsConfig.model_validate({
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "sender": "rau-hub@rau.example",
                 "ca_file": str(certs / "ca.crt"), "timeout_s": 10},
        "sms": {"url": sms_url, "fields": {"to": "{to}", "message": "{text}", "sender": "RAU"}},
        "targets": {"rau-duty": {"email": ["duty@rau.example"], "sms": ["+38344000111"]}},
        "retry": {"attempts": 3, "base_s": 0.05, "cap_s": 0.2},
        **extra,
    })


def hit(**extra) -> bytes:
    return json.dumps({
        "id": new_id(), "stream": "hit", "site": "bcp-a", "crossing": "01JCROSSING", "reference": "SEED-1",
        "indicator_id": "C-WEIGHT-10", "version": 1, "level": "central", "channel": "red",
        "title": "Measured mass deviates from declared gross mass",
        "instructions": "Weigh again on the static scale; inspect the load.",
        "matched": {"deviation_abs_pct": 25.0}, "notify": ["rau-duty"], **extra}).encode()


def work(dispatcher: Dispatcher, ledger: Ledger, until) -> None:
    """Run the dispatcher's rounds until the delivery log says `until`."""
    def done():
        dispatcher.run_once()
        return until(ledger.delivery_counts())
    wait_for(done, 30, interval_s=0.05, what="the deliveries to settle")


def test_a_hit_alerts_its_targets_by_email_and_sms_once_however_often_it_arrives(
        ledger_url, certs, relay, gateway):
    controller, mailbox = relay
    config = alerts_config(certs, controller.port, gateway.url)
    ledger = Ledger(ledger_url)
    record = {"reference": "SEED-1", "version": 1, "tractor_plate": "SK123AB", "trailer_plate": "SK9XY"}
    ledger.record_routed("SEED-1", 1, "bcp-a", json.dumps(record))
    payload = hit(notify=["rau-duty", "nobody-configured"])
    first = ledger.ingest([("bcp-a", "hit", payload)], planner(config))
    again = ledger.ingest([("bcp-a", "hit", payload)], planner(config))
    assert (first.stored, first.alerts) == (1, 3) and (again.duplicates, again.alerts) == (1, 0)

    dispatcher = Dispatcher(Ledger(ledger_url), config, holder="w1")
    work(dispatcher, ledger, lambda counts: counts.get("sent") == 2)
    assert ledger.delivery_counts() == {"sent": 2, "failed": 1}

    [(sender, to, content)] = mailbox.messages
    mail = message_from_bytes(content)
    assert sender == "rau-hub@rau.example" and to == ["duty@rau.example"]
    assert mail["Subject"] == "[RAU] RED C-WEIGHT-10 at bcp-a: SK123AB / SK9XY"
    text = mail.get_payload()
    for part in ("Weigh again on the static scale; inspect the load.", "Channel: red", "Site: bcp-a",
                 "Truck: SK123AB / SK9XY", "Reference: SEED-1", "deviation_abs_pct: 25.0"):
        assert part in text
    [(content_type, body)] = gateway.posts
    sms = json.loads(body)
    assert content_type == "application/json" and sms["to"] == "+38344000111" and sms["sender"] == "RAU"
    assert sms["message"].startswith("RAU RED C-WEIGHT-10 bcp-a SK123AB / SK9XY ref SEED-1: Weigh again")

    [unknown] = ledger.deliveries(failed_only=True)
    assert (unknown.target, unknown.status) == ("nobody-configured", "failed")
    assert "no such target" in unknown.error
    dispatcher.stop()
    ledger.close()


def test_a_failing_gateway_is_retried_with_backoff_then_the_failure_is_logged_and_counted(
        ledger_url, certs, relay, caplog):
    controller, _ = relay
    failing = Gateway(status=503)
    try:
        config = alerts_config(certs, controller.port, failing.url)
        config.targets["rau-duty"].email.clear()
        ledger = Ledger(ledger_url)
        ledger.ingest([("bcp-a", "hit", hit())], planner(config))
        dispatcher = Dispatcher(Ledger(ledger_url), config, holder="w1")
        work(dispatcher, ledger, lambda counts: counts.get("failed") == 1)
    finally:
        failing.close()
    assert len(failing.posts) == 3  # retry.attempts
    assert dispatcher.counters["retried"] == 2 and dispatcher.counters["failed"] == 1
    [row] = ledger.deliveries()
    assert (row.status, row.attempts, row.error) == ("failed", 3, "SMS gateway answered 503 Service Unavailable")
    assert any("alert_failed" in r.getMessage() and "+38344000111" in r.getMessage() for r in caplog.records)
    dispatcher.stop()
    ledger.close()

    db = ledger_url
    out = CliRunner().invoke(central, ["alerts", "--db", db, "--failed"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == "deliveries: 1 failed"
    assert "failed     sms   +38344000111 C-WEIGHT-10 at bcp-a" in out.output and "3 attempt(s)" in out.output


def test_full_jitter_stays_within_its_bound():
    import random

    rng = random.Random(7)
    waits = [full_jitter_s(n, 2.0, 300.0, rng) for n in range(1, 12) for _ in range(50)]
    assert all(0 <= w <= 300.0 for w in waits)
    assert max(full_jitter_s(1, 2.0, 300.0, rng) for _ in range(200)) <= 2.0
    assert max(full_jitter_s(10, 2.0, 300.0, rng) for _ in range(200)) > 2.0 * 2 ** 3  # it grows


def test_past_the_rate_limit_alerts_to_one_recipient_are_suppressed(ledger_url, certs, relay, gateway):
    controller, mailbox = relay
    config = alerts_config(certs, controller.port, gateway.url,
                           rate_limit={"per_recipient": 2, "window_s": 3600})
    config.targets["rau-duty"].sms.clear()
    ledger = Ledger(ledger_url)
    ledger.ingest([("bcp-a", "hit", hit()) for _ in range(3)], planner(config))
    dispatcher = Dispatcher(Ledger(ledger_url), config, holder="w1")
    work(dispatcher, ledger, lambda counts: counts.get("sent", 0) + counts.get("suppressed", 0) == 3)
    assert ledger.delivery_counts() == {"sent": 2, "suppressed": 1} and len(mailbox.messages) == 2
    [suppressed] = ledger.deliveries(failed_only=True)
    assert suppressed.error == "rate limit: 2 per 3600 s to this recipient"
    dispatcher.stop()
    ledger.close()


def test_a_relay_without_starttls_gets_nothing(tmp_path, certs, plain_relay, gateway):
    controller, mailbox = plain_relay
    config = alerts_config(certs, controller.port, gateway.url, retry={"attempts": 1})
    config.targets["rau-duty"].sms.clear()
    ledger = Ledger(tmp_path / "c.db")
    ledger.ingest([("bcp-a", "hit", hit())], planner(config))
    dispatcher = Dispatcher(Ledger(tmp_path / "c.db"), config, holder="w1")
    work(dispatcher, ledger, lambda counts: counts.get("failed") == 1)
    assert mailbox.messages == []
    assert "offers no STARTTLS: not sending in clear" in ledger.deliveries()[0].error
    dispatcher.stop()
    ledger.close()


def test_serve_with_a_config_file_alerts_as_hits_arrive(tmp_path, broker, certs, relay, gateway):
    controller, mailbox = relay
    config = tmp_path / "central.toml"
    config.write_text(f"""
db = "{tmp_path / 'central.db'}"
sites = ["bcp-a"]

[offices]
XK0101 = "bcp-a"

[alerts.smtp]
host = "127.0.0.1"
port = {controller.port}
sender = "rau-hub@rau.example"
ca_file = "{certs / 'ca.crt'}"

[alerts.sms]
url = "{gateway.url}"
format = "form"
fields = {{ number = "{{to}}", body = "{{text}}" }}

[alerts.targets.rau-duty]
email = ["duty@rau.example"]
sms = ["+38344000111"]
""")
    assert load_hub_config(config).alerts.targets["rau-duty"].sms == ["+38344000111"]
    hub = serve_central(broker.port, tmp_path / "central.db", tmp_path, "--config", str(config))
    site = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bcp-a-alerts")
    site.connect("127.0.0.1", broker.port)
    site.loop_start()
    try:
        payload = hit()
        for _ in range(2):  # a QoS 1 duplicate, or a resend: one alert all the same
            site.publish(topics.up("bcp-a", "hit"), payload, qos=1).wait_for_publish(5)
        wait_for(lambda: mailbox.messages and gateway.posts, 30, what="the e-mail and the SMS")
        assert gateway.posts[0][0] == "application/x-www-form-urlencoded"
        assert b"number=%2B38344000111" in gateway.posts[0][1]

        def listed() -> str:
            out = CliRunner().invoke(central, ["alerts", "--db", str(tmp_path / "central.db")]).output
            return out if "2 sent" in out else ""

        assert wait_for(listed, 15, what="the log to say 2 sent").splitlines()[0] == "deliveries: 2 sent"
    finally:
        site.loop_stop()
        site.disconnect()
        hub.terminate()
    # the hub has stopped: what the relay and the gateway got is all they will get
    assert len(mailbox.messages) == 1 and len(gateway.posts) == 1


def test_a_bad_hub_configuration_is_refused_with_its_key(tmp_path):
    bad = tmp_path / "central.toml"
    bad.write_text('[alerts.targets.rau-duty]\nemail = ["not-an-address"]\n\n[alerts.smtp]\nhost = "r"\nsender = "a@b"'
                   '\nstarttls = false\n')
    result = CliRunner().invoke(central, ["serve", "--config", str(bad), "--db", str(tmp_path / "c.db")])
    assert result.exit_code == 1
    assert "alerts.targets.rau-duty.email: Value error, 'not-an-address' is not an e-mail address" in result.output
    assert "alerts.smtp.starttls: Extra inputs are not permitted" in result.output  # STARTTLS is not optional
