"""Evidence on demand at the RAU, on both ledger back-ends: the hub's intake (a site's
chain proof and chunks, as its uploader sends them, checked against the anchored heads)
and the console's evidence page, request, file view and export, each refusal with its
4xx, its audit entry and its counter."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient
from testkit.rau_console_rig import audit, log_in

from edge_agent.central.console.app import create_app
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.central.evidence_intake import EvidenceIntake
from edge_agent.central.ledger import Ledger
from edge_agent.evidence.cli import evidence
from edge_agent.evidence.manifest import EvidenceStore
from edge_agent.evidence.upload import upload_plan
from edge_agent.ids import new_id

PASSWORD = "correct horse battery"
USERS = {"ana": "analyst", "mona": "monitoring", "adam": "administrator"}
SITE = "bcp-a"
CHUNK = 1024


def head_event(manifest) -> tuple[str, str, bytes]:
    return (SITE, "evidence_head", json.dumps({"id": new_id(), "stream": "evidence_head", "site": SITE,
                                                "sequence": manifest.sequence, "crossing_id": manifest.crossing_id,
                                                "sha256": manifest.sha256}).encode())


def upload(intake, ledger, root, crossing, request, tamper: bool = False) -> dict:
    """What the site's uploader sends for a request, through the hub's intake; the last ack."""
    plan = upload_plan(root, crossing)
    ledger.add_evidence_request(request, SITE, crossing, "ana")  # as the console does
    message = {"id": new_id(), "stream": "evidence_manifest", "site": SITE, "request": request, "chunk_bytes": CHUNK,
               **plan}
    acks = intake.take(ledger, [(SITE, "evidence_manifest", json.dumps(message).encode())])
    if acks[(SITE, request)].get("manifest") == "refused":
        return acks[(SITE, request)]  # the uploader stops there
    for entry in plan["files"]:
        data = (root / entry["path"]).read_bytes()
        if tamper:
            data = data[:-1] + bytes([data[-1] ^ 1])
        for index in range(-(-len(data) // CHUNK)):
            chunk = {"id": new_id(), "stream": "evidence_chunk", "site": SITE, "request": request,
                     "sha256": entry["sha256"], "index": index,
                     "data": base64.b64encode(data[index * CHUNK:(index + 1) * CHUNK]).decode()}
            acks = intake.take(ledger, [(SITE, "evidence_chunk", json.dumps(chunk).encode())])
    return acks[(SITE, request)]


@pytest.fixture
def site(tmp_path):
    store = EvidenceStore(tmp_path / "evidence")
    store.add_bytes("C1", "snapshot", "arrival.jpg", b"\xff\xd8" + bytes(range(256)) * 10)
    store.add_bytes("C1", "anpr", "event.xml", b"<EventNotificationAlert/>")
    good = store.seal("C1")
    store.add_bytes("C2", "snapshot", "arrival.jpg", b"\xff\xd8" + b"x" * 3000)
    bad = store.seal("C2")
    store.add_bytes("C3", "scale", "frames.hex", b"0220")
    unanchored = store.seal("C3")
    return store, good, bad, unanchored


@pytest.fixture
def rau(tmp_path, ledger_url, site):
    store, good, bad, _ = site
    ledger = Ledger(ledger_url)
    ledger.set_status(SITE, "online")
    ledger.set_health(SITE, json.dumps({"id": new_id(), "stream": "health", "lanes": {"phases": {"L1": "idle"}}}))
    ledger.ingest([head_event(good), head_event(bad)])
    ledger.close()
    app = create_app(RauConsoleSettings(ledger=ledger_url, users_db=tmp_path / "rau_console.db"))
    for name, role in USERS.items():
        app.state.console.accounts.add_user(name, role, PASSWORD)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
        yield app, client, ledger_url
    app.state.console.close()


def login(client, username: str, page: str = "/crossings/bcp-a/C1/evidence") -> str:
    return log_in(client, username, PASSWORD, page)



def test_the_hub_verifies_an_upload_and_refuses_a_tampered_or_unproven_one(ledger_url, site):
    store, good, bad, unanchored = site
    ledger = Ledger(ledger_url)
    try:
        ledger.ingest([head_event(good), head_event(bad)])
        counters: Counter[str] = Counter()
        intake = EvidenceIntake(counters)
        ack = upload(intake, ledger, store.root, "C1", "R1")
        assert [f["state"] for f in ledger.evidence_files(SITE, "C1")] == ["verified", "verified"]
        assert counters["evidence_verified"] == 2 and ack["refused"] == []
        jpeg = next(f for f in good.files if f["kind"] == "snapshot")
        assert hashlib.sha256(ledger.evidence_content(SITE, jpeg["sha256"])).hexdigest() == jpeg["sha256"]
        # Asked again: the hub says it holds every chunk, so the site sends nothing.
        ledger.add_evidence_request("R1b", SITE, "C1", "ana")
        message = {"request": "R1b", "crossing_id": "C1", "chunk_bytes": CHUNK, **upload_plan(store.root, "C1")}
        again = intake.take(ledger, [(SITE, "evidence_manifest", json.dumps(message).encode())])[(SITE, "R1b")]
        assert again["manifest"] == "accepted" and len(again["have"][jpeg["sha256"]]) == -(-jpeg["size"] // CHUNK)

        tampered = upload(intake, ledger, store.root, "C2", "R2", tamper=True)
        [row] = ledger.evidence_files(SITE, "C2")
        assert row["state"] == "refused" and row["have"] == 0 and tampered["refused"] == [bad.files[0]["sha256"]]
        assert counters["evidence_refused"] == 1

        unproven = upload(intake, ledger, store.root, "C3", "R3")
        assert unproven["manifest"] == "refused" and ledger.evidence_files(SITE, "C3") == []
        [request] = ledger.evidence_requests(SITE, "C3")
        assert request["state"] == "refused" and "anchored" in request["detail"]
        stray = {"request": "R3", "sha256": unanchored.files[0]["sha256"], "index": 0, "data": "MDIyMA=="}
        refused = intake.take(ledger, [(SITE, "evidence_chunk", json.dumps(stray).encode())])[(SITE, "R3")]
        assert refused["refused"] == [unanchored.files[0]["sha256"]] and counters["evidence_refused"] == 3
        assert ledger.evidence_chunk_indexes(SITE, unanchored.files[0]["sha256"]) == []
        ledger.add_evidence_request("R1c", SITE, "C1", "ana")
        odd = {"request": "R1c", "crossing_id": "C1", "chunk_bytes": CHUNK, **upload_plan(store.root, "C1"), "files": 5}
        ack = intake.take(ledger, [(SITE, "evidence_manifest", json.dumps(odd).encode())])[(SITE, "R1c")]
        assert ack["manifest"] == "refused" and counters["evidence_refused"] == 4
        unasked = {"request": "R9", "crossing_id": "C1", "chunk_bytes": CHUNK, **upload_plan(store.root, "C1")}
        ack = intake.take(ledger, [(SITE, "evidence_manifest", json.dumps(unasked).encode())])[(SITE, "R9")]
        assert ack["manifest"] == "refused" and counters["evidence_refused"] == 5
        assert ledger.rejection_count() == counters["evidence_refused"]
    finally:
        ledger.close()


def test_an_analyst_requests_evidence_and_the_command_is_queued_and_audited(rau):
    app, client, ledger_url = rau
    csrf = login(client, "ana", "/crossings/bcp-a/C1")
    r = client.post("/crossings/bcp-a/C1/evidence/request", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/crossings/bcp-a/C1/evidence"
    ledger = Ledger(ledger_url)
    try:
        [command] = ledger.commands(site=SITE)
        [request] = ledger.evidence_requests(SITE, "C1")
    finally:
        ledger.close()
    assert command["command"] == "evidence_request" and command["crossing_id"] == "C1" and command["by"] == "ana"
    assert request["id"] == command["id"] and request["state"] == "requested"
    assert audit(app, "evidence_request")[0].outcome == "done"
    assert "waiting for the site" in client.get("/crossings/bcp-a/C1/evidence").text


def test_requests_are_refused_without_a_session_a_token_the_role_or_a_crossing(rau):
    app, client, ledger_url = rau
    client.cookies.clear()
    assert client.post("/crossings/bcp-a/C1/evidence/request", data={}).status_code == 303
    csrf = login(client, "ana")
    assert client.post("/crossings/bcp-a/C1/evidence/request", data={"csrf": "stale"}).status_code == 403
    assert client.post("/crossings/bcp-a/NOPE/evidence/request", data={"csrf": csrf}).status_code == 404
    mona_csrf = login(client, "mona")
    r = client.post("/crossings/bcp-a/C1/evidence/request", data={"csrf": mona_csrf})
    assert r.status_code == 403 and "may not do this" in r.text
    assert "Request evidence" not in client.get("/crossings/bcp-a/C1/evidence").text
    outcomes = [e.outcome for e in audit(app, "evidence_request")]
    assert outcomes.count("refused") == 3 and outcomes.count("rejected") == 1
    assert app.state.console.counters["evidence_request:refused"] == 3
    ledger = Ledger(ledger_url)
    try:
        assert ledger.commands(site=SITE) == []
    finally:
        ledger.close()


def test_verified_files_are_shown_and_exported_and_nothing_else_is(rau, site, tmp_path):
    app, client, ledger_url = rau
    store, good, bad, _ = site
    ledger = Ledger(ledger_url)
    try:
        intake = EvidenceIntake(Counter())
        upload(intake, ledger, store.root, "C1", "R1")
        upload(intake, ledger, store.root, "C2", "R2", tamper=True)
    finally:
        ledger.close()
    login(client, "ana")
    page = client.get("/crossings/bcp-a/C1/evidence").text
    assert page.count('class="state">verified<') == 2 and "Export for prosecutors" in page
    jpeg = next(f for f in good.files if f["kind"] == "snapshot")
    got = client.get(f"/crossings/bcp-a/C1/evidence/{jpeg['sha256']}?view=1")
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.content == (store.root / jpeg["path"]).read_bytes()
    assert 'class="state">refused<' in client.get("/crossings/bcp-a/C2/evidence").text
    assert client.get(f"/crossings/bcp-a/C2/evidence/{bad.files[0]['sha256']}").status_code == 404
    assert client.get("/crossings/bcp-a/C1/evidence/not-a-digest").status_code == 400

    export = client.get("/crossings/bcp-a/C1/evidence.zip")
    assert export.status_code == 200
    archive = tmp_path / "C1.zip"
    archive.write_bytes(export.content)
    ok = CliRunner().invoke(evidence, ["verify-export", str(archive)])
    assert ok.exit_code == 0 and f"sha256 {bad.sha256}" in ok.output, ok.output  # the newest anchored head
    assert client.get("/crossings/bcp-a/C3/evidence.zip").status_code in (404, 409)

    login(client, "adam")
    assert client.get(f"/crossings/bcp-a/C1/evidence/{jpeg['sha256']}").status_code == 403
    login(client, "mona")
    assert client.get(f"/crossings/bcp-a/C1/evidence/{jpeg['sha256']}").status_code == 200
    assert client.get("/crossings/bcp-a/C1/evidence.zip").status_code == 403
    views = [e.outcome for e in audit(app, "evidence_view")]
    assert views.count("done") == 2 and views.count("refused") == 3
    exports = [e.outcome for e in audit(app, "evidence_export")]
    assert exports.count("done") == 1 and exports.count("refused") >= 1
    assert app.state.console.counters["evidence_view:refused"] == 3


def test_cctv_snapshots_are_asked_shown_and_refused_as_they_should(rau):
    app, client, ledger_url = rau
    csrf = login(client, "mona", "/sites/bcp-a/cctv")
    r = client.post("/sites/bcp-a/cctv", data={"csrf": csrf, "lane": "L1"})
    assert r.status_code == 303 and r.headers["location"] == "/sites/bcp-a/cctv"
    assert client.post("/sites/bcp-a/cctv", data={"csrf": csrf, "lane": "L9"}).status_code == 422
    assert client.post("/sites/bcp-a/cctv", data={"csrf": "stale", "lane": "L1"}).status_code == 403
    assert client.post("/sites/nowhere/cctv", data={"csrf": csrf, "lane": "L1"}).status_code == 404
    ledger = Ledger(ledger_url)
    try:
        [command] = ledger.commands(site=SITE)
        assert command["command"] == "cctv_snapshot" and command["lane"] == "L1" and command["by"] == "mona"
        counters: Counter[str] = Counter()
        intake = EvidenceIntake(counters)
        jpeg = b"\xff\xd8\xff\xe0" + b"frame" * 100
        answer = {"request": command["id"], "lane": "L1", "camera": "L1-scene", "taken_at": "2026-01-01T00:00:00Z",
                  "data": base64.b64encode(jpeg).decode()}
        ack = intake.take(ledger, [(SITE, "cctv_snapshot", json.dumps(answer).encode())])[(SITE, command["id"])]
        assert ack["manifest"] == "accepted" and counters["cctv_snapshots"] == 1
        again = intake.take(ledger, [(SITE, "cctv_snapshot", json.dumps(answer).encode())])[(SITE, command["id"])]
        assert again["manifest"] == "accepted" and counters["evidence_refused"] == 0  # a resend is no refusal
        forged = {**answer, "request": "never-asked"}
        intake.take(ledger, [(SITE, "cctv_snapshot", json.dumps(forged).encode())])
        assert counters["evidence_refused"] == 1
        csrf = login(client, "ana", "/sites/bcp-a/cctv")
        assert client.post("/sites/bcp-a/cctv", data={"csrf": csrf, "lane": "L1"}).status_code == 303
        second = ledger.commands(site=SITE)[0]["id"]
        not_jpeg = {**answer, "request": second, "data": base64.b64encode(b"<html>").decode()}
        intake.take(ledger, [(SITE, "cctv_snapshot", json.dumps(not_jpeg).encode())])
        assert counters["evidence_refused"] == 2
    finally:
        ledger.close()
    page = client.get("/sites/bcp-a/cctv").text
    assert "L1-scene" in page and 'class="state">refused<' in page
    image = client.get(f"/sites/bcp-a/cctv/{command['id']}.jpg")
    assert image.status_code == 200 and image.content == jpeg and image.headers["content-type"] == "image/jpeg"
    assert client.get(f"/sites/bcp-a/cctv/{second}.jpg").status_code == 404

    adam_csrf = login(client, "adam", "/sites/bcp-a")
    refused = client.post("/sites/bcp-a/cctv", data={"csrf": adam_csrf, "lane": "L1"})
    assert refused.status_code == 403 and "may not do this" in refused.text
    assert "Fetch the latest frame" not in client.get("/sites/bcp-a/cctv").text
    outcomes = [e.outcome for e in audit(app, "cctv_snapshot")]
    assert outcomes.count("done") == 2 and outcomes.count("rejected") == 2 and outcomes.count("refused") == 2
    assert app.state.console.counters["cctv_snapshot:rejected"] == 2


def test_unfinished_requests_are_published_again_and_finished_ones_are_not(ledger_url):
    """What the hub does when a site comes back online (a restarted site forgot its requests)."""
    ledger = Ledger(ledger_url)
    try:
        def ask(request: str, site: str, crossing: str) -> None:
            ledger.add_evidence_request(request, site, crossing, "ana")
            ledger.queue_command(request, site, json.dumps({"command": "evidence_request", "id": request}), "ana")
            ledger.mark_command_published(request)

        ask("R-NO-PROOF", "bcp-a", "C1")
        ask("R-SHORT", "bcp-a", "C2")
        ask("R-DONE", "bcp-a", "C3")
        ask("R-ELSEWHERE", "bcp-b", "C4")
        ledger.set_evidence_request("R-SHORT", "received")
        ledger.put_evidence_file("bcp-a", "C2", {"sha256": "a" * 64, "path": "clip.mp4", "size": 10}, 1, "requested")
        ledger.set_evidence_request("R-DONE", "received")
        ledger.put_evidence_file("bcp-a", "C3", {"sha256": "b" * 64, "path": "clip.mp4", "size": 10}, 1, "verified")
        assert ledger.commands_pending() == []
        assert ledger.reopen_evidence_requests("bcp-a") == 2
        assert sorted(c[0] for c in ledger.commands_pending()) == ["R-NO-PROOF", "R-SHORT"]
        assert ledger.reopen_evidence_requests("bcp-a") == 0  # already waiting to be published
    finally:
        ledger.close()
