"""Password guessing at the console's login is slowed down, per username and per address,
without locking an officer out for good, letting one valid account reset the count, or
letting a guesser elsewhere keep an officer out at the booth (issue 14, item 6)."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from testkit import console_rig as rig

from edge_agent.config import ConsoleConfig
from edge_agent.web.audit import AuditLog, verify
from edge_agent.web.login_audit import LoginRefusals
from edge_agent.web.throttle import UNKNOWN_USER_BUCKETS, LoginThrottle, ThrottlePolicy, address_key, pause_after

POLICY = ThrottlePolicy(free_failures=3, free_failures_per_client=5, pause_s=10.0, max_pause_s=60.0,
                        forget_after_s=60.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def throttle(clock, tmp_path):
    t = LoginThrottle(tmp_path / "console.db", POLICY, clock=clock)
    yield t
    t.close()


def failed(throttle: LoginThrottle, username: str, client: str) -> float:
    """One wrong password, as the login page makes it: admitted, then settled as a failure."""
    admission = throttle.admit(username, client)
    assert admission.admitted, f"{username} from {client} paused {admission.wait_s} s"
    return throttle.settle(admission, ok=False)


def succeeded(throttle: LoginThrottle, username: str, client: str) -> None:
    admission = throttle.admit(username, client)
    assert admission.admitted
    assert throttle.settle(admission, ok=True) == 0.0


@pytest.mark.parametrize(("failures", "pause"), [(0, 0.0), (2, 0.0), (3, 10.0), (4, 20.0), (5, 40.0), (6, 60.0),
                                                 (30, 60.0), (10_000, 60.0)])
def test_the_pause_starts_after_the_free_failures_and_doubles_up_to_the_cap(failures, pause):
    assert pause_after(failures, 3, POLICY) == pause


def test_a_username_pauses_after_its_free_failures_then_gets_one_more_try(throttle, clock):
    assert [failed(throttle, "olga", "10.0.0.5") for _ in range(3)] == [0.0, 0.0, 10.0]
    assert throttle.wait_s("olga", "10.0.0.9") == 10.0  # from any address
    assert throttle.wait_s("vera", "10.0.0.5") == 0.0  # other officers at the same booth are not held up
    refused = throttle.admit("olga", "10.0.0.5")
    assert (refused.admitted, refused.wait_s) == (False, 10.0)
    clock.now += 10.0
    assert throttle.wait_s("olga", "10.0.0.5") == 0.0
    assert failed(throttle, "olga", "10.0.0.5") == 20.0


def test_success_clears_the_username_but_not_the_address(throttle):
    for name in ("a1", "a2", "a3", "a4"):
        failed(throttle, name, "10.0.0.66")
    succeeded(throttle, "a4", "10.0.0.66")  # takes back its own count, not the four before it
    assert failed(throttle, "a5", "10.0.0.66") == 10.0  # the fifth failure from the address
    assert throttle.wait_s("anyone", "10.0.0.66") == 10.0
    assert throttle.wait_s("anyone", "10.0.0.67") == 0.0


def test_a_quiet_spell_forgets_the_count(throttle, clock):
    for _ in range(3):
        failed(throttle, "olga", "10.0.0.5")
    clock.now += 60.0
    assert throttle.wait_s("olga", "10.0.0.5") == 0.0
    assert failed(throttle, "olga", "10.0.0.5") == 0.0  # counting from one again


def test_an_attempt_is_counted_before_its_password_is_checked(throttle):
    """The race of issue 14: the check and the count are one step, so attempts still being
    verified already hold their place in the count."""
    admitted = [throttle.admit("olga", f"10.0.1.{i}") for i in range(10)]
    assert [a.admitted for a in admitted] == [True] * 3 + [False] * 7
    assert throttle.failures("olga", "10.0.1.99") == 3


def test_concurrent_attempts_in_threads_pass_at_most_the_free_failures(throttle):
    barrier = threading.Barrier(40)

    def attempt(i: int) -> bool:
        barrier.wait()
        return throttle.admit("olga", f"10.0.2.{i}").admitted

    with ThreadPoolExecutor(40) as pool:
        assert sum(pool.map(attempt, range(40))) == 3


def test_ipv6_clients_are_counted_by_their_slash_64():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("[2001:db8:1:2:bbbb::9]:443") == "2001:db8:1:2::/64"
    assert address_key("::ffff:10.0.0.5") == "10.0.0.5"
    assert address_key("testclient") == "testclient"


def test_a_remembered_address_keeps_the_officer_in_while_her_name_is_guessed_elsewhere(throttle, clock):
    succeeded(throttle, "olga", "10.0.0.5")  # her booth, yesterday
    clock.now += 3600.0
    for i in range(3):
        failed(throttle, "olga", f"192.0.2.{i}")
    assert throttle.wait_s("olga", "192.0.2.200") > 0, "paused everywhere else"
    assert throttle.wait_s("olga", "10.0.0.5") == 0.0, "but not where she logs in"
    # A guesser at her own terminal is held to the username's free failures there.
    assert [failed(throttle, "olga", "10.0.0.5") for _ in range(3)] == [0.0, 0.0, 10.0]


def test_a_booth_terminal_is_counted_apart_without_a_previous_login(tmp_path, clock):
    import ipaddress

    throttle = LoginThrottle(tmp_path / "console.db", POLICY, clock=clock,
                             booth=[ipaddress.ip_network("10.1.1.0/28")])
    try:
        for i in range(5):
            throttle.admit("olga", f"192.0.2.{i}")
        assert throttle.wait_s("olga", "192.0.2.99") > 0
        assert throttle.wait_s("olga", "10.1.1.3") == 0.0
        assert throttle.wait_s("olga", "10.1.1.17") > 0  # outside the booth network
    finally:
        throttle.close()


def test_a_remembered_address_expires(tmp_path, clock):
    policy = ThrottlePolicy(free_failures=3, free_failures_per_client=5, pause_s=10.0, max_pause_s=60.0,
                            forget_after_s=60.0, remember_address_s=86400.0)
    throttle = LoginThrottle(tmp_path / "console.db", policy, clock=clock)
    try:
        succeeded(throttle, "olga", "10.0.0.5")
        clock.now += 86400.0
        for i in range(3):
            failed(throttle, "olga", f"192.0.2.{i}")
        assert throttle.wait_s("olga", "10.0.0.5") > 0
    finally:
        throttle.close()


def test_spraying_5100_names_from_many_addresses_neither_resets_a_user_nor_grows_the_table(tmp_path, clock):
    accounts = {"olga", "vera"}
    throttle = LoginThrottle(tmp_path / "console.db", POLICY, clock=clock, is_account=accounts.__contains__,
                             max_addresses=200)
    try:
        for _ in range(3):
            failed(throttle, "olga", "192.0.2.1")
        paused = throttle.wait_s("olga", "192.0.2.77")
        assert paused == 10.0
        for i in range(5100):
            throttle.admit(f"spray{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        assert throttle.failures("olga", "192.0.2.77") == 3
        assert throttle.wait_s("olga", "192.0.2.77") == paused
        assert throttle.tracked() <= UNKNOWN_USER_BUCKETS + 200 + 1
        # Invented names pause like real ones: the pause does not tell which names exist.
        assert throttle.wait_s("spray17", "198.51.100.1") > 0
    finally:
        throttle.close()


def test_counts_survive_a_restart(tmp_path, clock):
    first = LoginThrottle(tmp_path / "console.db", POLICY, clock=clock)
    for _ in range(3):
        failed(first, "olga", "192.0.2.1")
    succeeded(first, "vera", "10.0.0.5")
    first.close()
    second = LoginThrottle(tmp_path / "console.db", POLICY, clock=clock)
    try:
        assert second.failures("olga", "192.0.2.1") == 3
        assert second.wait_s("olga", "192.0.2.2") == 10.0
        for i in range(3):
            failed(second, "vera", f"192.0.2.{10 + i}")
        assert second.wait_s("vera", "10.0.0.5") == 0.0, "the remembered address too"
    finally:
        second.close()


def test_failed_logins_write_a_bounded_number_of_audit_rows_and_one_summary(tmp_path, clock):
    audit = AuditLog(tmp_path / "console.db")
    try:
        refusals = LoginRefusals(audit, rows_per_window=5, window_s=600.0, clock=clock)
        for i in range(300):
            refusals.refused(f"name{i % 40}", f"192.0.2.{i % 7}", "wrong username or password")
        assert len(audit.entries(1000, "login")) == 5
        clock.now += 600.0
        refusals.tick()
        entries = audit.entries(1000, "login")
        assert len(entries) == 6
        summary = entries[0]
        assert summary.details["failures"] == 295 and summary.details["usernames"] == 40
        assert summary.details["clients"] == 7 and len(summary.details["top_usernames"]) == 10
        refusals.refused("olga", "192.0.2.1", "wrong username or password")  # a new window writes again
        refusals.flush()
        assert len(audit.entries(1000, "login")) == 7
        assert verify(tmp_path / "console.db").ok
    finally:
        audit.close()


# --------------------------------------------------------------------------- through the login page


@pytest.fixture
def paused_app(tmp_path):
    """A console whose throttle pauses after two wrong passwords; the clock is the test's."""
    from gpiozero.pins.mock import MockFactory
    from starlette.testclient import TestClient

    from edge_agent.config import ConsoleConfig
    from edge_agent.console.app import create_app

    config = rig.site_config(tmp_path, ConsoleConfig(enabled=False, login_free_failures=2, login_pause_s=30.0))
    bench = rig.LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path)
    bench.start()
    app = create_app(bench, config.console)
    for name, role in rig.USERS.items():
        app.state.console.accounts.add_user(name, role, rig.PASSWORD)
    clock = Clock()
    app.state.console.throttle.clock = clock
    try:
        with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
            yield app, client, clock
    finally:
        app.state.console.close()
        bench.stop()


def test_the_login_page_pauses_a_guessed_username_says_so_and_audits_it_once(paused_app):
    app, client, clock = paused_app
    console = app.state.console
    for _ in range(2):
        assert client.post("/login", data={"username": "olga", "password": "guess-guess"}).status_code == 401
    r = client.post("/login", data={"username": "olga", "password": rig.PASSWORD})
    assert r.status_code == 429, "the right password is not even checked during the pause"
    assert r.headers["retry-after"] == "30"
    assert "too many wrong passwords: try again in 30 s" in r.text
    assert client.post("/login", data={"username": "olga", "password": "guess-again"}).status_code == 429
    assert console.counters["login:throttled"] == 2
    entries = console.audit.entries(50, "login")
    assert len(entries) == 2, "refusals during the pause are counted, not audited"
    assert "logins paused 30 s" in entries[0].reason
    with urllib.request.urlopen(console.agent.metrics.url, timeout=10) as m:
        assert 'edge_agent_console_requests_total{action="login",outcome="throttled"} 2' in m.read().decode()
    rig.login(client, "vera")  # another officer at the same booth logs in meanwhile
    clock.now += 30.0
    r = client.post("/login", data={"username": "olga", "password": rig.PASSWORD})
    assert r.status_code == 303


# --------------------------------------------------------------------------- the attacks, over real HTTP

SERVED = ConsoleConfig(enabled=False, port=0, login_free_failures=3, login_free_failures_per_client=4,
                       login_pause_s=300.0, booth_addresses=["127.0.0.2/32"])


@pytest.fixture
def bench(tmp_path):
    from gpiozero.pins.mock import MockFactory

    config = rig.site_config(tmp_path, SERVED)
    agent = rig.LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture
def served(bench):
    """The console served by uvicorn on loopback, pausing after three wrong passwords for
    a username and four from an address; 127.0.0.2 is a booth terminal. Clients pick
    their source address in 127.0.0.0/8, so each is a real, different TCP peer."""
    from edge_agent.console import start_console

    handle = start_console(bench, SERVED)
    for name, role in rig.USERS.items():
        handle.console.accounts.add_user(name, role, rig.PASSWORD)
    try:
        yield handle
    finally:
        handle.stop()


def post_login(url: str, username: str, password: str, *, source: str = "127.0.0.1",
               headers: dict[str, str] | None = None) -> int:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60, source_address=(source, 0))
    try:
        body = urllib.parse.urlencode({"username": username, "password": password})
        conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
        return conn.getresponse().status
    finally:
        conn.close()


def test_40_concurrent_guesses_try_at_most_the_free_failures(served):
    barrier = threading.Barrier(40)

    def guess(i: int) -> int:
        barrier.wait()
        return post_login(served.url, "olga", f"guess-{i:04d}-wrong", source=f"127.0.1.{i + 1}")

    with ThreadPoolExecutor(40) as pool:
        statuses = Counter(pool.map(guess, range(40)))
    assert statuses == {401: 3, 429: 37}
    assert served.console.counters["login:refused"] == 3  # passwords actually checked


def test_a_rotated_x_forwarded_for_from_loopback_does_not_change_the_address(served):
    statuses = [post_login(served.url, f"spray{i}", "guess-guess", headers={"X-Forwarded-For": f"203.0.113.{i}"})
                for i in range(8)]
    assert statuses == [401] * 4 + [429] * 4, "counted by the TCP peer, which no header changes"
    assert post_login(served.url, "spray99", "guess-guess", source="127.0.0.9") == 401  # another peer is not paused


def test_a_remote_guesser_cannot_lock_the_officer_out_at_her_booth_or_usual_terminal(served):
    assert post_login(served.url, "olga", rig.PASSWORD, source="127.0.0.3") == 303  # her usual terminal
    for i in range(6):  # the guesser spreads over addresses to keep below the address limit
        post_login(served.url, "olga", "guess-guess", source=f"127.0.2.{i + 1}")
    assert post_login(served.url, "olga", rig.PASSWORD, source="127.0.2.50") == 429, "paused elsewhere"
    assert post_login(served.url, "olga", rig.PASSWORD, source="127.0.0.2") == 303, "the booth terminal"
    assert post_login(served.url, "olga", rig.PASSWORD, source="127.0.0.3") == 303, "where she logged in before"


def test_a_pause_survives_a_restart_of_the_console(bench):
    from edge_agent.console import start_console

    first = start_console(bench, SERVED)
    try:
        first.console.accounts.add_user("olga", "officer", rig.PASSWORD)
        for _ in range(3):
            assert post_login(first.url, "olga", "guess-guess", source="127.0.3.1") == 401
    finally:
        first.stop()
    again = start_console(bench, SERVED)
    try:
        assert post_login(again.url, "olga", rig.PASSWORD, source="127.0.3.2") == 429
    finally:
        again.stop()
