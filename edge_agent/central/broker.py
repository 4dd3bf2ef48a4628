"""How the hub's tools reach the broker: one place for host, port, TLS and protocol.

Works against mosquitto and any MQTT 3.1.1 or 5 broker (EMQX, VerneMQ, HiveMQ): only
standard features are used (QoS 1, retained messages, persistent subscriptions (clean start off), and, for a
hub running several instances behind a cluster, shared subscriptions).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.errors import AgentError


class BrokerError(AgentError, ConnectionError):
    """The broker cannot be reached or refused the connection."""


@dataclass(frozen=True)
class Endpoint:
    host: str = "127.0.0.1"
    port: int = 1883
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    protocol: str = "3.1.1"  # or "5"
    keepalive_s: int = 30

    def client(self, client_id: str, *, persistent: bool) -> Any:
        """A configured, unconnected paho client (persistent: the broker keeps our subscriptions and queue)."""
        import paho.mqtt.client as mqtt

        v5 = self.protocol == "5"
        kwargs: dict[str, Any] = {
            "callback_api_version": mqtt.CallbackAPIVersion.VERSION2,
            "client_id": client_id,
            "protocol": mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        }
        if not v5:
            kwargs["clean_session"] = not persistent
        client = mqtt.Client(**kwargs)
        if self.tls_ca:
            client.tls_set(
                ca_certs=str(self.tls_ca),
                certfile=str(self.tls_cert) if self.tls_cert else None,
                keyfile=str(self.tls_key) if self.tls_key else None,
            )
        return client

    def connect_kwargs(self, *, persistent: bool) -> dict[str, Any]:
        if self.protocol != "5":
            return {}
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = 7 * 24 * 3600
        return {"clean_start": not persistent, "properties": props}


def publish_once(
    endpoint: Endpoint, client_id: str, messages: list[tuple[str, bytes, bool]], timeout_s: float = 10.0
) -> None:
    """Connect, publish (topic, payload, retain) at QoS 1, wait for every PUBACK, leave."""
    client = endpoint.client(client_id, persistent=False)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(c: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(endpoint.host, endpoint.port, endpoint.keepalive_s, **endpoint.connect_kwargs(persistent=False))
    except OSError as err:
        raise BrokerError(f"cannot reach broker {endpoint.host}:{endpoint.port}: {err}") from err
    client.loop_start()
    try:
        if not connected.wait(timeout_s) or refused:
            raise BrokerError(f"broker {endpoint.host}:{endpoint.port} refused: {refused or 'timeout'}")
        infos = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload, retain in messages]
        for info in infos:
            info.wait_for_publish(timeout=timeout_s)
            if not info.is_published():
                raise BrokerError("publish was not acknowledged by the broker")
    finally:
        client.disconnect()
        client.loop_stop()
