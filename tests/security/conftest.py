"""Fixtures for the security tests: certificates made by the shipped make-certs.sh, and
a mosquitto running the shipped configuration (testkit/shipped_broker.py), one per module."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from testkit.shipped_broker import MOSQ, OTHER_SITE, RESERVED, SERVICES, SITE, ShippedBroker, issue_with_openssl


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", str(MOSQ / "make-certs.sh"), str(out), SITE, OTHER_SITE, *SERVICES],
                   check=True, capture_output=True, timeout=120)
    for cn in RESERVED:
        issue_with_openssl(out, cn)
    return out


@pytest.fixture(scope="module")
def shipped_broker(tmp_path_factory, certs):
    broker = ShippedBroker(tmp_path_factory.mktemp("shipped-broker"), certs)
    broker.start()
    yield broker
    broker.stop()

