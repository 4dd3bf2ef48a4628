"""The real `edge-agent central serve` on the shared private broker, and the ledger on
both of its back-ends: SQLite in the test's directory, PostgreSQL in a private cluster.

One PostgreSQL cluster serves the whole session (initdb + pg_ctl, a Unix socket, no TCP);
each test gets its own database, copied from a template the migrations already ran on,
so tests stay independent and cheap. Without the server binaries the tests fail, naming
the package: CI installs it (the Makefile's TEST_DEBS).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from testkit.processes import serve_central

from edge_agent.central.ledger import Ledger
from edge_agent.central.pg_cluster import ClusterUnavailable, PrivateCluster

_numbers = itertools.count(1)


@pytest.fixture()
def served_hub(broker, tmp_path: Path):
    """`edge-agent central serve` as a child process; yields (db path, process)."""
    db = tmp_path / "central.db"
    proc = serve_central(broker.port, db, tmp_path, "--office", "XK0101=bcp-a")
    yield db, proc.popen
    proc.terminate()


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = PrivateCluster()
    try:
        cluster.start()
    except ClusterUnavailable as err:
        pytest.fail(f"PostgreSQL is needed for the central ledger's tests: {err}", pytrace=False)
    try:
        Ledger(cluster.create_database("ledger_template")).close()  # migrated once, copied per test
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def pg_url(pg_cluster) -> str:
    """A fresh, migrated PostgreSQL ledger database of this test's own."""
    return pg_cluster.create_database(f"t{next(_numbers)}", template="ledger_template")


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path: Path) -> str:
    """The same behaviour tests on both back-ends: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    return request.getfixturevalue("pg_url")
