"""A full disk under a running agent: nothing lost, the barrier safe, one alarm, and
recovery without a restart.

The agent's data directory is a small tmpfs mounted for the test (a real file system
that really fills: ENOSPC, SQLITE_FULL). Where mounting is not allowed the database's
page limit (PRAGMA max_page_count) stands in for the disk: the same SQLITE_FULL."""

from __future__ import annotations

import errno
import logging
import subprocess
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from starlette.testclient import TestClient
from testkit import console_rig as rig

from edge_agent.config import StorageConfig
from edge_agent.models import PlateRead, PreArrivalReceived, VehicleDetected, VehicleLeft, WeightStable
from edge_agent.store import Store

RESERVE_MB = 2


class SmallDisk:
    """The data directory's file system, filled and freed on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(root)],
                                      capture_output=True).returncode == 0
        self.agent = None
        self.fillers = 0

    def fill(self) -> None:
        if not self.mounted:
            conn = self.agent.store.conn
            conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
            return
        self.fillers += 1
        block = b"\0" * 65536
        with open(self.root / f"filler-{self.fillers}", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(block)
            except OSError as err:
                assert err.errno == errno.ENOSPC
        with open(self.root / f"filler-{self.fillers}-tail", "wb", buffering=0) as f:
            try:  # the last partial block
                while True:
                    f.write(b"\0" * 512)
            except OSError:
                pass

    def free(self) -> None:
        if not self.mounted:
            self.agent.store.conn.execute("PRAGMA max_page_count = 1073741823")
            return
        for path in self.root.glob("filler-*"):
            path.unlink()

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], check=False)


@pytest.fixture
def disk(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    d = SmallDisk(root)
    yield d
    d.close()


def big_record(n: int):
    record = rig.plain_record(reference=f"EX-FULL-{n}", plate=f"FULL{n:03d}")
    return record.model_copy(update={"items": record.items * 80})


def test_a_full_disk_loses_nothing_keeps_the_barriers_safe_and_recovers_without_a_restart(disk, caplog):
    caplog.set_level(logging.INFO)
    config = rig.site_config(disk.root)
    lanes = [lane.model_copy(update={"gate": lane.gate.model_copy(update={"open_permission_s": 1.0})})
             for lane in config.lanes]
    config = config.model_copy(update={"lanes": lanes, "storage": StorageConfig(reserve_mb=RESERVE_MB)})
    agent = rig.LaneBench(config, pin_factory=MockFactory(), data_dir=disk.root).start()
    disk.agent = agent
    console = Console(agent)
    try:
        if disk.mounted:
            assert agent.reserve.held == RESERVE_MB * 2**20
        for lane, n in (("L1", 1), ("L2", 2)):
            snap = rig.drive_in(agent, lane, rig.plain_record(reference=f"EX-OK-{n}", plate=f"OKAY{n}"), f"OKAY{n}",
                                18000)
            assert snap["phase"] == "released", snap
            rig.wait_for(lambda lane=lane: agent.gates[lane].state()["barrier"] == "open", f"{lane} open")

        disk.fill()
        agent.post(PreArrivalReceived(record=big_record(1)))
        if disk.mounted:
            # The first failed commit gives the reserve back, and the event finishes in its space.
            rig.wait_for(lambda: agent.reserve.given_back == 1, "the reserve given back")
            rig.wait_for(lambda: agent.metrics_store.outbox_count() is not None and
                         _stored_prearrival(disk.root, "EX-FULL-1"), "the record stored in the reserve's space")
            assert not agent.core.storage_failed
            disk.fill()  # and then the reserve's space is gone too

        agent.post(VehicleLeft(lane="L1"))
        truck = [VehicleDetected(lane="L1"), PlateRead(lane="L1", text="FULL777", raw="FULL777", confidence=0.9),
                 WeightStable(lane="L1", gross_kg=18000)]
        for event in truck:
            agent.post(event)
        rig.wait_for(lambda: agent.core.storage_failed == "disk_full", "storage failed")
        # The truck that left has its barrier closed without a commit ...
        rig.wait_for(lambda: agent.gates["L1"].state()["barrier"] == "closed", "L1 closed behind the truck")
        # ... and the open permission the other lane held lapses, closing it too.
        rig.wait_for(lambda: "permission" in (agent.gates["L2"].state().get("fault") or ""), "L2's permission lapsed")
        rig.wait_for(lambda: len(agent.core.journal) >= 4, "the events kept in memory")
        assert agent.core.snapshot()["L1"]["phase"] == "storage_failed"
        assert agent.health()["storage"]["state"] == "failed" and agent.site_health()["storage"]["journal"] >= 4
        assert 'edge_agent_storage_failed{reason="disk_full"} 1' in agent.render_metrics()
        assert "Storage failed (disk full)" in console.page()

        disk.free()
        rig.wait_for(lambda: not agent.core.storage_failed, "the storage recovered", timeout_s=30)
        decided = rig.wait_for(lambda: (s := agent.core.snapshot()["L1"])["decided"] and s, "the new truck decided")
        assert decided["tractor"] == "FULL777" and decided["phase"] == "released"
        if disk.mounted:
            rig.wait_for(lambda: agent.reserve.held == RESERVE_MB * 2**20, "the reserve allocated again")
        assert "Storage failed" not in console.page()
    finally:
        console.close()
        agent.stop()

    kinds = _event_kinds(disk.root)
    expected = ["vehicle_left", "vehicle_detected", "plate_read", "weight_stable"]
    tail = [k for k in kinds if k in expected][-4:]
    assert tail == expected, kinds[-8:]
    assert sum(1 for r in caplog.records if r.message.startswith("storage_failed")) == 1
    assert sum(1 for r in caplog.records if r.message.startswith("storage_recovered")) == 1


def _stored_prearrival(data_dir: Path, reference: str) -> bool:
    store = Store.reader(data_dir / "agent.db")
    try:
        return store.prearrival(reference) is not None
    finally:
        store.close()


def _event_kinds(data_dir: Path) -> list[str]:
    store = Store.reader(data_dir / "agent.db")
    try:
        return [r[0] for r in store.conn.execute("SELECT kind FROM events ORDER BY rowid")]
    finally:
        store.close()


class Console:
    """The officers' console over the agent, logged in while the disk still had room."""

    def __init__(self, agent) -> None:
        from edge_agent.console.app import create_app

        self.app = create_app(agent, agent.config.console)
        self.app.state.console.accounts.add_user("olga", "officer", rig.PASSWORD)
        self.client = TestClient(self.app, base_url="http://127.0.0.1", follow_redirects=False).__enter__()
        rig.login(self.client, "olga")

    def page(self) -> str:
        return self.client.get("/").text

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.app.state.console.close()
