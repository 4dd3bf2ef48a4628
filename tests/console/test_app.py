"""HTTP-level tests of the console: each action, each refusal, through a real agent."""

from __future__ import annotations

import json
import urllib.request

from testkit import console_rig as rig

from edge_agent.models import PreArrivalReceived
from edge_agent.web.audit import verify

PASSWORD, drive_in, login, plain_record, tobacco_record, wait_for = (
    rig.PASSWORD, rig.drive_in, rig.login, rig.plain_record, rig.tobacco_record, rig.wait_for)


def _audit(app, action=None):
    return app.state.console.audit.entries(50, action)


def _events(agent, kind):
    from edge_agent.store import Store

    reader = Store.reader(agent.data_dir / "agent.db")
    try:
        return [json.loads(r["body"]) for r in reader.db.query("SELECT body FROM events WHERE kind = ? ORDER BY id",
                                                               [kind])]
    finally:
        reader.close()


def _rows(agent, sql, args=()):
    from edge_agent.store import Store

    reader = Store.reader(agent.data_dir / "agent.db")
    try:
        return list(reader.db.query(sql, list(args)))
    finally:
        reader.close()


# --------------------------------------------------------------------------- login and pages


def test_pages_need_a_login_and_a_wrong_password_is_refused_and_audited(client, app):
    assert client.get("/").status_code == 303
    assert client.get("/lanes/L1").headers["location"].startswith("/login")
    r = client.post("/login", data={"username": "olga", "password": "not the password"})
    assert r.status_code == 401
    assert "wrong username or password" in r.text
    entry = _audit(app, "login")[0]
    assert (entry.user, entry.outcome) == ("olga", "refused")
    r = client.post("/login", data={"username": "olga", "password": PASSWORD, "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_passwords_are_stored_as_argon2id_hashes(app):
    import sqlite3

    conn = sqlite3.connect(app.state.console.accounts.path)
    stored = conn.execute("SELECT password_hash FROM users WHERE username = 'olga'").fetchone()[0]
    conn.close()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_the_lane_page_shows_plates_weight_record_channel_and_why(client, agent):
    drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    login(client, "vera")
    html = client.get("/lanes/L1").text
    assert "KS123AB" in html and "conf 0.93" in html
    assert "EX-24-0001" in html
    assert 'id="channel">red<' in html
    assert "L-TOBACCO-24" in html and "count the packages against the declaration" in html
    assert "240220" in html  # the matched value
    assert 'id="barrier">closed<' in html and 'id="lights">red<' in html
    assert "decided offline" in html  # no uplink in this rig
    assert "24,100 kg" in html
    # a viewer sees no action forms
    assert 'id="form-plate"' not in html and 'id="form-control-act"' not in html


# --------------------------------------------------------------------------- plate correction


def test_an_officer_corrects_the_plate_and_the_camera_read_is_kept(client, agent, app):
    snap = drive_in(agent, "L1", None, "KS12BAB", 24100)  # misread: no record matches
    assert snap["reference"] == ""
    agent.post(PreArrivalReceived(record=tobacco_record(), source="seed-feed"))
    csrf = login(client, "olga")
    r = client.post("/lanes/L1/plate", data={"csrf": csrf, "crossing_id": snap["crossing"], "plate": "ks 123-ab",
                                             "role": "tractor", "reason": "camera misread B for 8"})
    assert r.status_code == 303
    wait_for(lambda: agent.core.snapshot()["L1"]["tractor"] == "KS123AB", "corrected plate")
    # re-assessed on the corrected plate: the record now matches and the channel only rises
    wait_for(lambda: agent.core.snapshot()["L1"]["reference"] == "EX-24-0001", "record matched")
    manual = wait_for(lambda: _events(agent, "manual_plate"), "manual plate stored")
    assert manual[-1]["user"] == "olga" and manual[-1]["reason"] == "camera misread B for 8"
    assert _events(agent, "plate_read")[0]["raw"] == "KS12BAB"
    entry = _audit(app, "plate")[0]
    assert (entry.user, entry.outcome, entry.reason) == ("olga", "done", "camera misread B for 8")


def test_a_bad_plate_form_is_refused_field_by_field(client, agent, app):
    snap = drive_in(agent, "L1", None, "KS12BAB", 24100)
    csrf = login(client, "olga")
    r = client.post("/lanes/L1/plate", data={"csrf": csrf, "crossing_id": snap["crossing"], "plate": "!!",
                                             "role": "cab", "reason": ""})
    assert r.status_code == 400
    assert 'data-error="plate.plate"' in r.text and 'data-error="plate.role"' in r.text
    assert 'data-error="plate.reason"' in r.text
    assert _events(agent, "manual_plate") == []
    assert _audit(app, "plate")[0].outcome == "rejected"


def test_a_form_for_a_truck_that_has_gone_is_refused(client, agent):
    drive_in(agent, "L1", None, "KS12BAB", 24100)
    csrf = login(client, "olga")
    r = client.post("/lanes/L1/plate", data={"csrf": csrf, "crossing_id": "01OLDCROSSING", "plate": "KS123AB",
                                             "role": "tractor", "reason": "fix it"})
    assert r.status_code == 400 and "moved on to another truck" in r.text


def test_plate_correction_without_the_role_is_refused_and_audited(client, agent, app):
    snap = drive_in(agent, "L1", None, "KS12BAB", 24100)
    for user in ("vera", "tomo", "lara"):
        csrf = login(client, user)
        r = client.post("/lanes/L1/plate", data={"csrf": csrf, "crossing_id": snap["crossing"], "plate": "KS123AB",
                                                 "role": "tractor", "reason": "fix"})
        assert r.status_code == 403, user
        assert 'id="refusal"' in r.text
        entry = _audit(app, "plate")[0]
        assert (entry.user, entry.outcome) == (user, "refused")
    assert _events(agent, "manual_plate") == []


def test_a_post_without_the_csrf_token_is_refused_and_audited(client, agent, app):
    snap = drive_in(agent, "L1", None, "KS12BAB", 24100)
    login(client, "olga")
    r = client.post("/lanes/L1/release", data={"crossing_id": snap["crossing"], "reason": "forged"})
    assert r.status_code == 403 and "security token" in r.text
    assert _audit(app, "release")[0].outcome == "refused"
    r = client.post("/lanes/L1/release", data={"csrf": "guessed", "crossing_id": snap["crossing"], "reason": "forged"})
    assert r.status_code == 403
    assert agent.core.snapshot()["L1"]["phase"] == "held"


def test_a_post_without_a_session_goes_to_login_and_is_audited(client, agent, app):
    r = client.post("/lanes/L1/release", data={"reason": "anonymous"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    entry = _audit(app, "release")[0]
    assert (entry.user, entry.outcome) == ("-", "refused")


# --------------------------------------------------------------------------- release


def test_an_officer_releases_a_held_truck_and_the_barrier_opens(client, agent, app):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    assert snap["phase"] == "held"
    csrf = login(client, "olga")
    r = client.post("/lanes/L1/release",
                    data={"csrf": csrf, "crossing_id": snap["crossing"], "reason": "seal intact, known carrier"})
    assert r.status_code == 303
    wait_for(lambda: agent.gates["L1"].state()["barrier"] == "open", "barrier open")
    assert agent.core.snapshot()["L1"]["phase"] == "released"
    assert _events(agent, "manual_release")[-1]["reason"] == "seal intact, known carrier"


def test_release_needs_a_reason_and_the_role(client, agent, app):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    csrf = login(client, "olga")
    r = client.post("/lanes/L1/release", data={"csrf": csrf, "crossing_id": snap["crossing"], "reason": " "})
    assert r.status_code == 400 and 'data-error="release.reason"' in r.text
    csrf = login(client, "tomo")
    r = client.post("/lanes/L1/release", data={"csrf": csrf, "crossing_id": snap["crossing"], "reason": "technician"})
    assert r.status_code == 403
    assert agent.core.snapshot()["L1"]["phase"] == "held"
    assert [e.outcome for e in _audit(app, "release")[:2]] == ["refused", "rejected"]


# --------------------------------------------------------------------------- control act


def _act(client, csrf, crossing, **fields):
    data = {"csrf": csrf, "crossing_id": crossing, "control_type": "physical", "result": "negative",
            "then": "hold", "reason": ""}
    data.update(fields)
    return client.post("/lanes/L1/control-act", data=data)


def test_a_control_act_with_a_seizure_above_the_threshold_is_a_criminal_report_in_the_outbox(client, agent, app):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    csrf = login(client, "olga")
    r = _act(client, csrf, snap["crossing"], result="positive", findings="120 cartons of cigarettes behind pallets",
             seizure="on", seized_goods="cigarettes, 120 cartons", evaded_duties_eur="7,450.50",
             penalties="goods seized", legal_basis="Customs Code art. 273", measures="truck detained",
             then="refuse", reason="inspection done")
    assert r.status_code == 303
    rows = wait_for(lambda: _rows(agent, "SELECT * FROM control_acts"), "control act stored")
    assert rows[0]["crossing_id"] == snap["crossing"] and rows[0]["result"] == "positive" and rows[0]["user"] == "olga"
    body = json.loads(rows[0]["body"])
    assert body["classification"] == "criminal_report" and body["evaded_duties_eur"] == 7450.5
    outbox = [json.loads(r["payload"]) for r in _rows(agent, "SELECT payload FROM outbox WHERE stream = 'control_act'")]
    assert len(outbox) == 1
    assert outbox[0]["crossing_id"] == snap["crossing"] and outbox[0]["legal_basis"] == "Customs Code art. 273"
    assert outbox[0]["classification"] == "criminal_report" and outbox[0]["site"] == "xk-test"
    # "then refuse": the lane turns the truck back
    wait_for(lambda: agent.core.snapshot()["L1"]["phase"] == "refused", "entry refused")


def test_a_seizure_below_the_threshold_is_an_offence(client, agent):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    csrf = login(client, "oscar")
    r = _act(client, csrf, snap["crossing"], result="positive", findings="undeclared cigarettes", seizure="on",
             seized_goods="cigarettes, 5 cartons", evaded_duties_eur="4999.99", legal_basis="art. 273", then="release")
    assert r.status_code == 303
    rows = wait_for(lambda: _rows(agent, "SELECT body FROM control_acts"), "control act stored")
    assert json.loads(rows[0]["body"])["classification"] == "offence"
    wait_for(lambda: agent.gates["L1"].state()["barrier"] == "open", "released after the control")


def test_a_control_act_form_is_validated_field_by_field(client, agent, app):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    csrf = login(client, "olga")
    r = _act(client, csrf, snap["crossing"], control_type="x-ray", result="negative", seizure="on",
             evaded_duties_eur="-5", snapshots="../../etc/passwd")
    assert r.status_code == 400
    for field in ("control_type", "result", "seized_goods", "evaded_duties_eur", "legal_basis", "snapshots"):
        assert f'data-error="control_act.{field}"' in r.text, field
    r = _act(client, csrf, snap["crossing"], result="positive", findings="")
    assert r.status_code == 400 and 'data-error="control_act.findings"' in r.text
    r = _act(client, csrf, "01NOTACROSSING")
    assert r.status_code == 400 and 'data-error="control_act.crossing_id"' in r.text
    assert _audit(app, "control_act")[0].outcome == "rejected"
    assert _rows(agent, "SELECT * FROM control_acts") == []


def test_a_control_act_without_the_role_is_refused(client, agent, app):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    csrf = login(client, "lara")
    assert _act(client, csrf, snap["crossing"]).status_code == 403
    assert _audit(app, "control_act")[0].outcome == "refused"
    assert _events(agent, "control_act") == []


def test_classify_seizure_follows_the_configured_threshold():
    from edge_agent.core.officers import classify_seizure

    assert classify_seizure(False, 9000, 5000) == "none"
    assert classify_seizure(True, 4999.99, 5000) == "offence"
    assert classify_seizure(True, 5000, 5000) == "criminal_report"
    assert classify_seizure(True, 3000, 2500) == "criminal_report"


# --------------------------------------------------------------------------- re-channel


def _request_raise(client, agent, crossing, channel="red", user="olga"):
    csrf = login(client, user)
    r = client.post("/lanes/L1/rechannel", data={"csrf": csrf, "crossing_id": crossing, "channel": channel,
                                                 "reason": "driver nervous, seal number differs"})
    assert r.status_code == 303, r.text
    return wait_for(lambda: _rows(agent, "SELECT * FROM rechannels"), "request stored")[0]


def _decide(client, request_id, user, decision="approve", reason="agreed"):
    csrf = login(client, user)
    return client.post(f"/rechannels/{request_id}/decide", data={"csrf": csrf, "decision": decision, "reason": reason})


def test_a_rechannel_applies_only_after_head_of_office_and_analyst_approve(client, agent, app):
    snap = drive_in(agent, "L1", plain_record(), "BG555XY", 18100)
    assert snap["channel"] == "green"
    wait_for(lambda: agent.gates["L1"].state()["barrier"] == "open", "released green")
    row = _request_raise(client, agent, snap["crossing"])
    assert (row["from_channel"], row["to_channel"], row["status"]) == ("green", "red", "pending")
    assert _decide(client, row["id"], "hana").status_code == 303
    wait_for(lambda: _rows(agent, "SELECT head_by FROM rechannels")[0]["head_by"] == "hana", "head approval stored")
    assert agent.core.snapshot()["L1"]["channel"] == "green"  # one approval is not enough
    assert _decide(client, row["id"], "lara").status_code == 303
    wait_for(lambda: agent.core.snapshot()["L1"]["channel"] == "red", "channel raised")
    assert agent.core.snapshot()["L1"]["phase"] == "held"
    wait_for(lambda: agent.gates["L1"].state()["barrier"] == "closed", "barrier closed again")
    assert agent.gates["L1"].state()["sign"] == "inspection"
    stored = _rows(agent, "SELECT status, analyst_by FROM rechannels")[0]
    assert stored == {"status": "applied", "analyst_by": "lara"}
    assert _rows(agent, "SELECT channel FROM crossings WHERE id = ?", [snap["crossing"]])[0]["channel"] == "red"
    assert _rows(agent, "SELECT count(*) AS n FROM outbox WHERE stream = 'rechannel'")[0]["n"] == 1
    page = client.get("/rechannels").text
    assert "applied" in page


def test_a_rechannel_can_only_raise(client, agent, app):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)  # red already
    csrf = login(client, "olga")
    r = client.post("/lanes/L1/rechannel", data={"csrf": csrf, "crossing_id": snap["crossing"], "channel": "green",
                                                 "reason": "looks fine"})
    assert r.status_code == 400 and 'data-error="rechannel_request.channel"' in r.text
    assert "can only be raised" in r.text
    assert _rows(agent, "SELECT * FROM rechannels") == []


def test_rechannel_decisions_need_the_role_and_another_person(client, agent, app):
    snap = drive_in(agent, "L1", plain_record(), "BG555XY", 18100)
    row = _request_raise(client, agent, snap["crossing"], user="hana")
    for user in ("olga", "vera", "tomo"):
        assert _decide(client, row["id"], user).status_code == 403, user
        assert _audit(app, "rechannel_decide")[0].outcome == "refused"
    r = _decide(client, row["id"], "hana")  # asked for it herself
    assert r.status_code == 400 and "someone else must approve" in r.text
    r = _decide(client, row["id"], "lara", decision="refuse", reason="")
    assert r.status_code == 400 and 'data-error="reason"' in r.text
    assert _decide(client, row["id"], "lara", decision="refuse", reason="no grounds").status_code == 303
    wait_for(lambda: _rows(agent, "SELECT status FROM rechannels")[0]["status"] == "refused", "refused")
    assert agent.core.snapshot()["L1"]["channel"] == "green"


def test_an_officer_cannot_request_a_rechannel_as_a_viewer(client, agent, app):
    snap = drive_in(agent, "L1", plain_record(), "BG555XY", 18100)
    csrf = login(client, "vera")
    r = client.post("/lanes/L1/rechannel", data={"csrf": csrf, "crossing_id": snap["crossing"], "channel": "red",
                                                 "reason": "why not"})
    assert r.status_code == 403
    assert _audit(app, "rechannel_request")[0].outcome == "refused"


# --------------------------------------------------------------------------- local profiles and statistics


FRUIT = {"id": "L-FRUIT-07", "title": "Apples from a new exporter", "channel": "yellow", "priority": "10",
         "status": "active", "instructions": "Check the phytosanitary certificate.",
         "when": '{"field": "items.hs_code", "op": "prefix", "value": "0808"}', "reason": "new exporter"}


def test_the_analyst_adds_a_local_indicator_and_the_next_truck_is_assessed_with_it(client, agent, app):
    csrf = login(client, "lara")
    r = client.post("/profiles", data={"csrf": csrf, **FRUIT})
    assert r.status_code == 303, r.text
    wait_for(lambda: agent.assessor.rules.get("L-FRUIT-07") is not None, "rules swapped")
    local = json.loads((agent.data_dir / "indicators" / "local.json").read_text())
    assert [i["id"] for i in local["indicators"]] == ["L-FRUIT-07"] and local["indicators"][0]["author"] == "lara"
    assert agent.assessor.rules.get("L-TOBACCO-24") is not None  # the central set stays in force
    snap = drive_in(agent, "L1", plain_record(), "BG555XY", 18100)
    assert snap["channel"] == "yellow"
    assert "L-FRUIT-07" in client.get("/profiles").text
    edit = client.get("/profiles?edit=L-FRUIT-07").text  # the editor opens with the indicator filled in
    assert 'value="Apples from a new exporter"' in edit and "&#34;0808&#34;" in edit
    r = client.post("/profiles", data={"csrf": csrf, **FRUIT, "status": "inactive", "reason": "season over"})
    assert r.status_code == 303
    wait_for(lambda: agent.assessor.rules.get("L-FRUIT-07").version == 2, "version 2 in force")
    assert agent.assessor.rules.get("L-FRUIT-07").status == "inactive"
    # Both versions go up to the RAU. The swap is visible a moment before its transaction
    # commits the outbox row, so wait for the row rather than read it once.
    wait_for(lambda: _rows(agent, "SELECT count(*) AS n FROM outbox WHERE stream = 'local_indicator'")[0]["n"] == 2,
             "both versions queued for the RAU")


def test_a_bad_indicator_is_refused_next_to_its_field(client, agent, app):
    csrf = login(client, "lara")
    r = client.post("/profiles",
                    data={"csrf": csrf, **FRUIT, "when": '{"field": "nonsense.field", "op": "eq", "value": 1}'})
    assert r.status_code == 400 and 'data-error="when"' in r.text
    r = client.post("/profiles",
                    data={"csrf": csrf, **FRUIT, "id": "bad id!", "when": "{not json", "channel": "purple"})
    assert r.status_code == 400
    for field in ("id", "when", "channel"):
        assert f'data-error="{field}"' in r.text
    assert not (agent.data_dir / "indicators" / "local.json").exists()


def test_only_the_local_risk_analyst_edits_profiles(client, agent, app):
    for user in ("olga", "hana", "tomo", "vera"):
        csrf = login(client, user)
        assert client.post("/profiles", data={"csrf": csrf, **FRUIT}).status_code == 403, user
    assert [e.outcome for e in _audit(app, "profiles_edit")] == ["refused"] * 4


def test_hit_statistics_count_positive_controls_per_hit(client, agent):
    from edge_agent.models import VehicleLeft

    csrf = login(client, "olga")
    for n, positive in enumerate((True, False)):
        snap = drive_in(agent, "L1", tobacco_record(f"EX-24-01{n}", f"KS10{n}AA"), f"KS10{n}AA", 24000)
        fields = {"result": "positive", "findings": "extra cartons"} if positive else {}
        assert _act(client, csrf, snap["crossing"], then="release", **fields).status_code == 303
        wait_for(lambda: agent.gates["L1"].state()["barrier"] == "open", "released")
        agent.post(VehicleLeft(lane="L1"))
        wait_for(lambda: agent.core.snapshot()["L1"]["phase"] == "idle", "lane free")
    html = client.get("/stats").text
    row = html.split('data-indicator="L-TOBACCO-24"')[1].split("</tr>")[0]
    cells = [c.split("<")[0] for c in row.split("<td>")[1:]]
    assert cells[2:] == ["2", "2", "1", "50.0 %"]


# --------------------------------------------------------------------------- health, metrics, audit


def test_healthz_on_the_console_and_the_figures_on_the_agents_own_port(client, agent):
    drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    h = client.get("/healthz")
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["lanes"] == 2
    assert client.get("/metrics").status_code == 404  # they name indicators: not on the console
    login(client, "olga")
    client.post("/login", data={"username": "olga", "password": "wrong-password"})
    with urllib.request.urlopen(agent.metrics.url, timeout=10) as m:
        assert m.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = m.read().decode()
    assert "# TYPE edge_agent_lanes gauge\nedge_agent_lanes 2" in text
    assert 'edge_agent_decisions_total{channel="red"} 1' in text
    assert 'edge_agent_hits_total{indicator="L-TOBACCO-24",level="local"} 1' in text
    assert "edge_agent_outbox_backlog 1" in text  # the hit, not yet acknowledged
    assert 'edge_agent_gate_fault{lane="L1"} 0' in text
    assert 'edge_agent_console_requests_total{action="login",outcome="done"} 1' in text  # the console's, added
    for line in text.splitlines():
        assert line.startswith("#") or line.split(" ")[-1].replace(".", "", 1).replace("e+", "").isdigit(), line


def test_the_audit_log_chain_verifies_and_tampering_is_found(client, agent, app):
    import sqlite3

    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    csrf = login(client, "olga")
    client.post("/lanes/L1/release", data={"csrf": csrf, "crossing_id": snap["crossing"], "reason": "all fine"})
    login(client, "vera")
    client.post("/lanes/L1/release", data={"csrf": csrf, "crossing_id": snap["crossing"], "reason": "not mine"})
    path = app.state.console.audit.path
    result = verify(path)
    assert result.ok and result.entries >= 4
    conn = sqlite3.connect(path)
    conn.execute("UPDATE audit SET reason = 'nothing to see' WHERE action = 'release' AND outcome = 'done'")
    conn.commit()
    bad = verify(path)
    assert not bad.ok and "edited" in bad.problem
    conn.execute("DELETE FROM audit WHERE seq = 2")
    conn.commit()
    conn.close()
    assert not verify(path).ok


def test_the_audit_page_is_for_the_head_of_office_technician_and_analyst(client, agent, app):
    login(client, "olga")
    assert client.get("/audit").status_code == 403
    login(client, "hana")
    page = client.get("/audit").text
    assert "audit_view" in page and "refused" in page


def test_snapshots_of_the_crossing_are_attached_to_the_control_act_and_served_to_logged_in_users(client, agent):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    folder = agent.data_dir / "evidence" / "crossings" / snap["crossing"] / "snapshot"
    folder.mkdir(parents=True)
    (folder / "decision_L1-cctv_1.jpg").write_bytes(b"\xff\xd8\xff\xe0 a jpeg")
    (agent.data_dir / "secret.jpg").write_bytes(b"not evidence")
    rel = f"crossings/{snap['crossing']}/snapshot/decision_L1-cctv_1.jpg"
    assert client.get(f"/evidence/{rel}").status_code == 401
    csrf = login(client, "olga")
    page = client.get("/lanes/L1").text
    assert f'src="/evidence/{rel}"' in page  # the latest CCTV snapshot, and offered for the act
    assert client.get(f"/evidence/{rel}").content == b"\xff\xd8\xff\xe0 a jpeg"
    assert client.get("/evidence/../secret.jpg").status_code == 404
    assert client.get("/evidence/%2e%2e/secret.jpg").status_code == 404
    r = _act(client, csrf, snap["crossing"], snapshots=rel)
    assert r.status_code == 303
    rows = wait_for(lambda: _rows(agent, "SELECT body FROM control_acts"), "control act stored")
    assert json.loads(rows[0]["body"])["snapshots"] == [rel]


def test_an_expired_indicator_set_shows_stale_on_the_lane(client, agent):
    from edge_agent.local_rules import load_indicator_set

    login(client, "vera")
    assert "STALE indicator set" not in client.get("/lanes/L1").text
    demo = json.loads(rig.DEMO_INDICATORS.read_text())
    agent.assessor.replace(load_indicator_set({**demo, "expires_at": "2026-02-01T00:00:00Z"}))
    assert 'id="stale-marker">STALE indicator set' in client.get("/lanes/L1").text
    assert "STALE indicators" in client.get("/").text


def test_what_users_type_is_escaped_on_every_page(client, agent):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    csrf = login(client, "olga")
    evil = "<script>alert(1)</script>"
    client.post("/lanes/L1/release", data={"csrf": csrf, "crossing_id": snap["crossing"], "reason": evil})
    login(client, "hana")
    page = client.get("/audit").text
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
