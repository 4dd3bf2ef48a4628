"""Fixtures for the console tests: a real agent and the console app over it (see rig.py)."""

from __future__ import annotations

import pytest
from testkit import console_rig as rig

LaneBench, site_config, USERS, PASSWORD = rig.LaneBench, rig.site_config, rig.USERS, rig.PASSWORD


@pytest.fixture
def agent(tmp_path):
    from gpiozero.pins.mock import MockFactory

    config = site_config(tmp_path)
    bench = LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path)
    bench.start()
    try:
        yield bench
    finally:
        bench.stop()


@pytest.fixture
def app(agent):
    from edge_agent.console.app import create_app

    application = create_app(agent, agent.config.console)
    for name, role in USERS.items():
        application.state.console.accounts.add_user(name, role, PASSWORD)
    yield application
    application.state.console.close()


@pytest.fixture
def client(app):
    from starlette.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as c:
        yield c
