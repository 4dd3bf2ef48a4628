"""Every console response carries the security headers, the pages hold nothing the
Content-Security-Policy would block, and the session cookie is Secure whenever the
browser reached the console over TLS (issue 14, item 7)."""

from __future__ import annotations

import re
import ssl
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
from testkit import console_rig as rig

from edge_agent.web.headers import HEADERS

TEMPLATES = Path(rig.ROOT) / "edge_agent" / "console" / "templates"


def _assert_headers(response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)


def test_every_kind_of_response_carries_the_security_headers(client):
    csp = HEADERS["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp and "script-src 'self'" in csp
    assert HEADERS["X-Frame-Options"] == "DENY" and HEADERS["X-Content-Type-Options"] == "nosniff"
    assert HEADERS["Referrer-Policy"] in {"no-referrer", "same-origin"}
    responses = [client.get("/"), client.get("/login"), client.get("/healthz"), client.get("/static/console.js"),
                 client.get("/no/such/page"), client.post("/login", data={"username": "olga", "password": "x" * 12})]
    rig.login(client, "olga")
    responses += [client.get("/lanes/L1"), client.get("/evidence/nothing.jpg"), client.get("/audit")]
    assert {r.status_code for r in responses} >= {200, 303, 401, 404}
    for response in responses:
        _assert_headers(response)


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_hold_no_inline_script_style_or_handler_the_policy_would_block(template):
    html = (TEMPLATES / template).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert not re.search(r"<style\b|\sstyle=", html), "inline style"
    assert not re.search(r"\son[a-z]+\s*=", html), "event handler attribute"
    assert "javascript:" not in html


# --------------------------------------------------------------------------- TLS and the Secure cookie


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "console.crt", folder / "console.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def _serve(agent, **console):
    from edge_agent.config import ConsoleConfig
    from edge_agent.console import start_console

    handle = start_console(agent, ConsoleConfig(enabled=False, port=0, live_interval_s=0.1, **console))
    handle.console.accounts.add_user("olga", "officer", rig.PASSWORD)
    return handle


def _login_cookie(client) -> str:
    r = client.post("/login", data={"username": "olga", "password": rig.PASSWORD})
    assert r.status_code == 303, r.text
    _assert_headers(r)
    return r.headers["set-cookie"].lower()


def test_the_console_serves_tls_itself_and_then_the_cookie_is_secure(agent, certificate):
    cert, key = certificate
    handle = _serve(agent, tls_cert=cert, tls_key=key)
    try:
        assert handle.url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=handle.url, verify=trust, timeout=20) as client:
            assert "; secure" in _login_cookie(client)
            with client.stream("GET", "/lanes/L1/live") as stream:  # the live panels work over TLS
                _assert_headers(stream)
                assert any(line.startswith("event: panel") for line in stream.iter_lines())
        with pytest.raises(httpx.HTTPError), httpx.Client(base_url=handle.url.replace("https", "http"), timeout=20) \
                as plain:
            plain.get("/login")
    finally:
        handle.stop()


def test_a_bad_certificate_is_a_clear_error_at_start(agent, tmp_path):
    from edge_agent.errors import ConsoleError

    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConsoleError, match="TLS certificate or key is unusable"):
        _serve(agent, tls_cert=junk, tls_key=junk)


@pytest.mark.parametrize(("console", "headers", "secure"), [
    ({}, {}, False),
    ({}, {"X-Forwarded-Proto": "https"}, False),  # from a proxy nobody listed
    ({"trusted_proxies": ["127.0.0.1"]}, {"X-Forwarded-Proto": "https"}, True),
    ({"trusted_proxies": ["127.0.0.1"]}, {"X-Forwarded-Proto": "http"}, False),
    ({"secure_cookies": True}, {}, True),
])
def test_over_plain_http_the_cookie_is_secure_only_when_a_trusted_proxy_had_tls(agent, console, headers, secure):
    handle = _serve(agent, **console)
    try:
        with httpx.Client(base_url=handle.url, timeout=20, headers=headers) as client:
            assert ("; secure" in _login_cookie(client)) is secure
    finally:
        handle.stop()
