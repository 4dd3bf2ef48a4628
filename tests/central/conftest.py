"""The real `edge-agent central serve` on the shared private broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit.processes import serve_central


@pytest.fixture()
def served_hub(broker, tmp_path: Path):
    """`edge-agent central serve` as a child process; yields (db path, process)."""
    db = tmp_path / "central.db"
    proc = serve_central(broker.port, db, tmp_path, "--office", "XK0101=bcp-a")
    yield db, proc.popen
    proc.terminate()
