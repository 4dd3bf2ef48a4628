"""/metrics on the agent's own port: loopback by default, a bearer token off it."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from edge_agent.config import parse_config
from edge_agent.metrics.server import MetricsServer
from edge_agent.site import site_problems

SITE = '[site]\nid = "x"\nregion = "y"\n[policy]\nrandom_secret = "metrics-test-secret-01"\n[[lanes]]\nid = "L1"\n'


def get(url: str, token: str = "") -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_a_token_guards_the_figures_when_one_is_set():
    server = MetricsServer(lambda: "edge_agent_lanes 1\n", host="127.0.0.1", port=0,
                           token="a-long-metrics-token-0123").start()
    try:
        assert get(server.url) == (401, "a bearer token is required\n")
        assert get(server.url, "wrong-token") [0] == 401
        assert get(server.url, "a-long-metrics-token-0123") == (200, "edge_agent_lanes 1\n")
        assert get(server.url.replace("/metrics", "/other"))[0] == 404
        assert (server.requests, server.refused) == (1, 2)
    finally:
        server.stop()


def test_a_part_in_trouble_is_a_500_with_no_traceback():
    def broken() -> str:
        raise RuntimeError("the store is gone")

    server = MetricsServer(broken, port=0).start()
    try:
        status, body = get(server.url)
        assert status == 500 and "Traceback" not in body and "see the agent's log" in body
    finally:
        server.stop()


@pytest.mark.parametrize(("metrics", "refused"), [
    ("", False),
    ('[metrics]\nhost = "0.0.0.0"\n', True),
    ('[metrics]\nhost = "0.0.0.0"\ntoken = "short"\n', True),
    ('[metrics]\nhost = "0.0.0.0"\ntoken = "a-long-metrics-token-0123"\n', False),
    ('[metrics]\nenabled = false\nhost = "0.0.0.0"\n', False),
])
def test_off_loopback_the_site_file_must_give_a_token(metrics, refused):
    problems = site_problems(parse_config(SITE + metrics))
    assert any(p.startswith("metrics.token:") for p in problems) is refused, problems
