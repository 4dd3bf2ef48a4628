"""The storage page: health for everyone, holds placed and released by the head of office
only, through the core, audit-logged."""

from __future__ import annotations

from testkit.console_rig import csrf_of, drive_in, login, plain_record, tobacco_record, wait_for


def _audit(app, action):
    return [e for e in app.state.console.audit.entries(100) if e.action == action]


def _hold(client, user, crossing, action="hold", reason="case 24/117 at the prosecutor"):
    login(client, user)
    csrf = csrf_of(client.get("/storage").text)
    return client.post("/storage/holds", data={"csrf": csrf, "crossing_id": crossing, "action": action,
                                               "reason": reason})


def test_the_head_of_office_holds_and_releases_a_crossing(client, agent, app):
    snap = drive_in(agent, "L1", plain_record(), "BG555XY", 18100)
    crossing = snap["crossing"]
    assert not agent.metrics_store.on_hold(crossing)
    assert _hold(client, "hana", crossing).status_code == 303
    wait_for(lambda: agent.metrics_store.on_hold(crossing), "the hold stored by the core")
    page = client.get("/storage").text
    assert crossing in page and "case 24/117" in page
    assert _audit(app, "storage_hold")[0].outcome == "done"
    assert _hold(client, "hana", crossing, "release", "case closed, no charges").status_code == 303
    wait_for(lambda: not agent.metrics_store.on_hold(crossing), "the release stored by the core")
    assert _audit(app, "storage_release")[0].reason == "case closed, no charges"


def test_a_crossing_with_a_hit_is_held_until_released(client, agent, app):
    snap = drive_in(agent, "L1", tobacco_record(), "KS123AB", 24100)
    crossing = snap["crossing"]
    wait_for(lambda: agent.metrics_store.on_hold(crossing), "held automatically for its hit")
    assert _hold(client, "hana", crossing, "release", "no case followed").status_code == 303
    wait_for(lambda: not agent.metrics_store.on_hold(crossing), "released")


def test_holds_need_the_role_a_reason_and_a_real_crossing(client, agent, app):
    snap = drive_in(agent, "L1", plain_record(), "BG555XY", 18100)
    for user in ("olga", "lara", "vera"):
        assert _hold(client, user, snap["crossing"]).status_code == 403, user
    assert _audit(app, "storage_hold")[0].outcome == "refused"
    r = _hold(client, "hana", snap["crossing"], reason="")
    assert r.status_code == 400 and 'data-error="reason"' in r.text
    r = _hold(client, "hana", "01NOSUCHCROSSING000000000")
    assert r.status_code == 400 and 'data-error="crossing_id"' in r.text
    r = _hold(client, "hana", snap["crossing"], "release", "nothing to release")
    assert r.status_code == 400 and "not on hold" in r.text
    assert not agent.metrics_store.on_hold(snap["crossing"])
    assert agent.metrics_store.holds() == []


def test_every_role_sees_the_storage_health(client, agent, app):
    login(client, "vera")
    page = client.get("/storage")
    assert page.status_code == 200
    assert 'id="storage-state">ok' in page.text and 'id="hold-form"' not in page.text
