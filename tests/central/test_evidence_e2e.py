"""Evidence on demand end to end: a real mosquitto, the hub (in this process, as tests/sync
runs it), a real agent linked to it, and the RAU console on the hub's ledger over HTTP.

An analyst asks for a crossing's evidence; the hub publishes the `evidence_request`; the
site uploads the files its manifests list in chunks; the hub checks each against the
manifest and the manifests against the head the site anchored; the console shows them
verified and serves them; the export verifies offline and a changed byte fails it. A
file changed on the site after its seal is refused; a file retention purged is shown as
purged; an upload cut short by a restart of the site resumes where the hub says."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient
from testkit import console_rig as rig
from testkit.waiting import wait_for

from edge_agent.central.broker import Endpoint
from edge_agent.central.console.app import create_app
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.central.hub import Hub
from edge_agent.central.ledger import Ledger
from edge_agent.config import SyncConfig
from edge_agent.evidence.cli import evidence
from edge_agent.ids import new_id

PASSWORD = "correct horse battery"
SITE = "xk-test"


def start_agent(tmp_path, broker, **sync):
    from gpiozero.pins.mock import MockFactory

    config = rig.site_config(tmp_path / "site")
    config = config.model_copy(update={"sync": SyncConfig(enabled=True, broker_port=broker.port, health_interval_s=0.5,
                                                          **sync)})
    return rig.LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path / "site").start()


@pytest.fixture
def hub(broker, tmp_path):
    db = tmp_path / "central.db"
    hub = Hub(Endpoint(port=broker.port), db, client_id=f"rau-hub-{os.getpid()}", duties_interval_s=0.2)
    hub.start()
    assert hub.connected.wait(15)
    yield hub
    hub.stop()


@pytest.fixture
def console(hub, tmp_path):
    app = create_app(RauConsoleSettings(ledger=str(hub.db), users_db=tmp_path / "rau_console.db", refresh_s=1.0))
    app.state.console.accounts.add_user("ana", "analyst", PASSWORD)
    try:
        with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
            assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 303
            yield client
    finally:
        app.state.console.close()


def seal(agent, files: dict[str, bytes]):
    store = agent.evidence.recorder.store
    crossing = new_id()
    for name, data in files.items():
        store.add_bytes(crossing, name.split(".")[-1], name, data)
    return crossing, store.seal(crossing)


def anchored(db, manifest) -> bool:
    ledger = Ledger(db)
    try:
        return bool(ledger.evidence_anchored(SITE, [manifest.sha256]))
    finally:
        ledger.close()


def ask(client, crossing) -> None:
    page = client.get(f"/crossings/{SITE}/{crossing}")
    assert page.status_code == 200 and "Request evidence" in page.text
    r = client.post(f"/crossings/{SITE}/{crossing}/evidence/request", data={"csrf": rig.csrf_of(page.text)})
    assert r.status_code == 303, r.text


def states(client, crossing) -> list[str]:
    import re

    page = client.get(f"/crossings/{SITE}/{crossing}/evidence").text
    return re.findall(r'</code></td><td class="state">([^<]+)</td>', page)


def test_requested_evidence_is_uploaded_verified_shown_and_exported(hub, console, broker, tmp_path):
    agent = start_agent(tmp_path, broker, evidence_rate_bytes_per_s=4_000_000, evidence_chunk_kib=4)
    try:
        picture = os.urandom(20_000)
        crossing, manifest = seal(agent, {"arrival.jpg": picture, "event.xml": b"<EventNotificationAlert/>"})
        changed, changed_manifest = seal(agent, {"arrival.jpg": os.urandom(9000)})
        purged, purged_manifest = seal(agent, {"arrival.jpg": os.urandom(5000), "frames.hex": b"0220"})
        wait_for(lambda: anchored(hub.db, purged_manifest), 30, what="the heads anchored at the hub")

        ask(console, crossing)
        wait_for(lambda: states(console, crossing) == ["verified", "verified"], 60, what="both files verified")
        page = console.get(f"/crossings/{SITE}/{crossing}/evidence").text
        for entry in manifest.files:
            assert entry["sha256"] in page
            got = console.get(f"/crossings/{SITE}/{crossing}/evidence/{entry['sha256']}")
            assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == entry["sha256"]
        jpeg = next(e for e in manifest.files if e["path"].endswith(".jpg"))
        assert console.get(f"/crossings/{SITE}/{crossing}/evidence/{jpeg['sha256']}").content == picture
        assert hub.counters["evidence_verified"] == 2

        export = console.get(f"/crossings/{SITE}/{crossing}/evidence.zip")
        assert export.status_code == 200 and export.headers["content-type"] == "application/zip"
        archive = tmp_path / "export.zip"
        archive.write_bytes(export.content)
        with zipfile.ZipFile(io.BytesIO(export.content)) as z:
            assert {"index.json", "summary.html"} <= set(z.namelist())
            assert z.read(f"files/{jpeg['path']}") == picture
        ok = CliRunner().invoke(evidence, ["verify-export", str(archive)])
        assert ok.exit_code == 0 and "2 file(s) match their manifests" in ok.output, ok.output
        raw = bytearray(export.content)
        raw[raw.index(picture[:64]) + 10] ^= 0x01
        archive.write_bytes(bytes(raw))
        bad = CliRunner().invoke(evidence, ["verify-export", str(archive)])
        assert bad.exit_code == 1, bad.output

        # A file changed on the site after its seal: its upload is refused, never shown.
        target = agent.evidence.recorder.store.root / changed_manifest.files[0]["path"]
        data = bytearray(target.read_bytes())
        data[100] ^= 0xFF
        target.write_bytes(bytes(data))
        ask(console, changed)
        wait_for(lambda: states(console, changed) == ["refused"], 60, what="the changed file refused")
        assert hub.counters["evidence_refused"] >= 1 and hub.counters["evidence_verified"] == 2
        refused = console.get(f"/crossings/{SITE}/{changed}/evidence/{changed_manifest.files[0]['sha256']}")
        assert refused.status_code == 404
        assert "evidence file" in Ledger(hub.db).conn.execute(
            "SELECT group_concat(reason) FROM rejections").fetchone()[0]

        # A file retention purged is reported with its tombstone, not as missing.
        store = agent.evidence.recorder.store
        jpg = next(e for e in purged_manifest.files if e["path"].endswith(".jpg"))
        tombstone = store.purge(purged, [{"path": jpg["path"], "class": "media", "reason": "period"}])
        wait_for(lambda: anchored(hub.db, tombstone), 30, what="the tombstone anchored")
        ask(console, purged)
        wait_for(lambda: sorted(states(console, purged)) == ["purged", "verified"], 60, what="purged and verified")
        assert tombstone.path.name in console.get(f"/crossings/{SITE}/{purged}/evidence").text
    finally:
        agent.stop()


def test_an_upload_cut_short_resumes_where_the_hub_says_unasked(hub, console, broker, tmp_path):
    # 24 chunks of 1 KiB at 4 KiB/s: the site is stopped part of the way through.
    agent = start_agent(tmp_path, broker, evidence_rate_bytes_per_s=4096, evidence_chunk_kib=1)
    data = os.urandom(24 * 1024)
    try:
        crossing, manifest = seal(agent, {"clip.bin": data})
        wait_for(lambda: anchored(hub.db, manifest), 30, what="the head anchored at the hub")
        ask(console, crossing)
        wait_for(lambda: (s := states(console, crossing)) and s[0].startswith("uploading")
                 and int(s[0].split()[1].split("/")[0]) >= 4, 60, what="part of the file at the hub")
    finally:
        agent.stop()
    before = int(states(console, crossing)[0].split()[1].split("/")[0])
    assert before < 24

    # The restarted site has forgotten the request: the hub asks again when it comes back online.
    agent = start_agent(tmp_path, broker, evidence_rate_bytes_per_s=4_000_000, evidence_chunk_kib=1)
    try:
        wait_for(lambda: states(console, crossing) == ["verified"], 60, what="the file verified after the restart")
        assert hub.counters["evidence_reasked"] >= 1
        sent = agent.sync.uploader.counters["chunks_sent"]
        assert 0 < sent <= 24 - before, f"sent {sent} chunks again, the hub had {before} of 24"
        got = console.get(f"/crossings/{SITE}/{crossing}/evidence/{manifest.files[0]['sha256']}")
        assert got.content == data
    finally:
        agent.stop()


def test_a_lanes_latest_cctv_frame_is_fetched_on_demand(hub, console, broker, tmp_path):
    from gpiozero.pins.mock import MockFactory

    from edge_agent.config import CameraConfig
    from edge_agent.simulators.cctv import CctvSimulator

    sim = CctvSimulator(fps=5, width=320, height=240).start()
    config = rig.site_config(tmp_path / "site")
    lane = config.lanes[0].model_copy(update={"cameras": [
        CameraConfig(id="L1-scene", kind="cctv", role="scene", url=sim.url)]})
    config = config.model_copy(update={"lanes": [lane, *config.lanes[1:]], "sync": SyncConfig(
        enabled=True, broker_port=broker.port, health_interval_s=0.5)})
    agent = rig.LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path / "site").start()
    try:
        wait_for(lambda: agent._cctv_snapshot("L1"), 30, what="a frame from the lane's camera")
        page = wait_for(lambda: (r := console.get(f"/sites/{SITE}/cctv")).status_code == 200
                        and 'value="L1"' in r.text and r.text, 30, what="the site's lanes at the hub")
        r = console.post(f"/sites/{SITE}/cctv", data={"csrf": rig.csrf_of(page), "lane": "L1"})
        assert r.status_code == 303, r.text
        import re

        shown = wait_for(lambda: re.search(r'src="(/sites/xk-test/cctv/[0-9A-Z]+\.jpg)"',
                                           console.get(f"/sites/{SITE}/cctv").text), 30, what="the snapshot shown")
        image = console.get(shown.group(1))
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.content[:2] == b"\xff\xd8" and hub.counters["cctv_snapshots"] == 1
        assert "L1-scene" in console.get(f"/sites/{SITE}/cctv").text
    finally:
        agent.stop()
        sim.stop()
