"""A mosquitto running the shipped configuration: firmware_config/mosquitto/mosquitto.conf
with only its paths and its port rewritten, the ACL file itself (not a copy), and client
certificates made by the shipped make-certs.sh.

`ShippedBroker` writes a wrapper configuration: two harness lines (the log file, and
`user root` when the tests run as root, since mosquitto would otherwise drop to a user
that cannot read the test's directory) followed by the shipped file with the six
path-and-port lines rewritten; `rewritten_lines` says which lines differ, and the tests
check that it is exactly those. `Identity` is one client certificate's connection.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge_agent.central.mosquitto import BrokerUnavailable, find_mosquitto, free_port, stop_process
from testkit.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
MOSQ = REPO / "firmware_config" / "mosquitto"
SHIPPED_CONF = MOSQ / "mosquitto.conf"
SHIPPED_ACL = MOSQ / "bcp.acl"

SITE, OTHER_SITE = "xk-a", "xk-b"
SERVICES = ("rau-hub", "rau-publisher", "seed-feed")
RESERVED = ("hub", "indicators")  # make-certs.sh refuses them; a PKI mistake is made with openssl below


def rewrite_shipped(text: str, *, port: int, certs: Path, workdir: Path) -> str:
    """The shipped configuration with its paths and its port pointed at the test's."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if words[:2] == ["listener", "8883"]:
            line = f"listener {port} 127.0.0.1"
        elif words and words[0] in ("certfile", "keyfile", "cafile"):
            line = f"{words[0]} {certs / Path(words[1]).name}"
        elif words and words[0] == "acl_file":
            line = f"acl_file {SHIPPED_ACL}"
        elif words and words[0] == "persistence_location":
            line = f"persistence_location {workdir}/"
        out.append(line)
    return "\n".join(out) + "\n"


def rewritten_lines(shipped: str, rewritten: str) -> list[str]:
    """The first word of every line the rewrite changed."""
    return [a.split()[0] for a, b in zip(shipped.splitlines(), rewritten.splitlines(), strict=True) if a != b]


class ShippedBroker:
    def __init__(self, workdir: Path, certs: Path) -> None:
        self.workdir = workdir
        self.certs = certs
        self.port = free_port()
        self.binary = find_mosquitto()
        self.process: subprocess.Popen | None = None
        self.shipped = SHIPPED_CONF.read_text()
        self.rewritten = rewrite_shipped(self.shipped, port=self.port, certs=certs, workdir=workdir)

    def start(self) -> ShippedBroker:
        if self.binary is None:
            raise BrokerUnavailable("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        harness = [f"log_dest file {self.workdir}/mosquitto.log"]
        if os.geteuid() == 0:
            harness.append("user root")
        conf = self.workdir / "wrapper.conf"
        conf.write_text("\n".join(harness) + "\n" + self.rewritten)
        self.process = subprocess.Popen([self.binary, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerUnavailable(f"mosquitto exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerUnavailable(f"mosquitto did not listen on {self.port}: {self.log()}")

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


def issue_with_openssl(certs: Path, cn: str) -> None:
    """A client certificate from the test CA for a name make-certs.sh refuses."""
    key, csr, crt, ext = (certs / f"{cn}.{s}" for s in ("key", "csr", "crt", "ext"))
    ext.write_text("extendedKeyUsage=clientAuth\n")
    run = {"check": True, "capture_output": True, "timeout": 60}
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(csr)], **run)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(certs / "ca.crt"), "-CAkey",
                    str(certs / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt)],
                   **run)


class Identity:
    """One MQTT 5 connection holding one certificate: what it received, and the broker's
    verdict on each of its publishes (the PUBACK's reason code: 0x87 "not authorized").

    `round_trip()` is the positive signal for "not delivered": mosquitto hands a message
    to its subscribers while it processes the PUBLISH, before the writer's PUBACK, and
    writes a connection's packets in order, so once a PUBACK for a later publish of this
    connection is in, every message the broker would deliver to it for an earlier
    (acknowledged) publish has arrived.
    """

    def __init__(self, broker: ShippedBroker, cn: str, client_id: str | None = None) -> None:
        self.cn = cn
        self.received: list[tuple[str, bytes]] = []
        self.connects = 0
        self.disconnects = 0
        self._acks: dict[int, Any] = {}
        self._acked = threading.Condition()
        self._subacks: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"{cn}-probe",
                                  protocol=mqtt.MQTTv5)
        self.client.tls_set(ca_certs=str(broker.certs / "ca.crt"), certfile=str(broker.certs / f"{cn}.crt"),
                            keyfile=str(broker.certs / f"{cn}.key"))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda c, u, m: self._keep(m.topic, bytes(m.payload))
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        wait_for(lambda: self.connects, 15, what=f"{cn} to connect")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self.connects += 1

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.disconnects += 1

    def _keep(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.received.append((topic, payload))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._acked:
            self._acks[mid] = reason_code
            self._acked.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._subacks.add(mid)

    def subscribe(self, filters: list[str]) -> None:
        _, mid = self.client.subscribe([(f, 0) for f in filters])
        wait_for(lambda: mid in self._subacks, 15, what=f"{self.cn}'s SUBACK")

    def publish(self, topic: str, payload: bytes) -> bool:
        """QoS 1; True when the broker accepted it, False when it refused it."""
        mid = self.client.publish(topic, payload, qos=1).mid
        with self._acked:
            if not self._acked.wait_for(lambda: mid in self._acks, 15):
                raise AssertionError(f"no PUBACK for {self.cn}'s publish on {topic}")
            return not self._acks.pop(mid).is_failure

    def round_trip(self) -> None:
        self.publish("probe/round-trip", b"")  # refused (outside bcp/v1), but acknowledged all the same

    def got(self, payload: bytes) -> bool:
        with self._lock:
            return any(p == payload for _, p in self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
