"""Indicator authoring on the RAU console over HTTP (the real app, a real ledger on both
back-ends): drafting with the form and the JSON editor (every error with its path),
the preview against the routed records, submission, a second person's approval that
signs and releases the bundles the sites verify, and each refusal with its 4xx, its
audit entry and its counter."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient
from testkit.rau_console_rig import audit, log_in
from testkit.rule_builders import make_record

from edge_agent.central.console.app import create_app
from edge_agent.central.console.pages import RauConsoleSettings
from edge_agent.central.ledger import Ledger
from edge_agent.models import Item
from edge_agent.sync import topics
from edge_agent.sync.bundles import Accepted, ActiveSetInfo, verify_bundle
from edge_agent.sync.trust import Root, TrustState, generate_key, make_root, sign

PASSWORD = "correct horse battery"
USERS = {"ana": "analyst", "sam": "senior_analyst", "sue": "senior_analyst", "mona": "monitoring"}

TOBACCO = {"id": "C-TOB-24", "version": 1, "level": "central", "title": "Tobacco",
           "when": {"field": "items.hs_code", "op": "prefix", "value": "2402"},
           "action": {"channel": "red"}, "instructions": "Count the cartons."}


def a_set(*indicators) -> dict:
    return {"format": "bcp-indicators/1", "version": "central-test", "lists": {}, "indicators": list(indicators)}


@pytest.fixture
def keys(tmp_path):
    """Signing keys of ana and sam in the console's keys directory, and a root whose
    central role needs both (threshold 2)."""
    folder = tmp_path / "keys"
    folder.mkdir()
    publics = {}
    for name in ("ana", "sam"):
        private, public = generate_key()
        (folder / f"{name}.key").write_text(private + "\n")
        publics[name] = public
    root_key, root_public = generate_key()
    root = sign(make_root(version=1, expires=datetime.now(UTC) + timedelta(days=30), root_keys=[root_public],
                          roles={"central": (list(publics.values()), 2)}), [root_key])
    return folder, Root.parse(root)


@pytest.fixture
def rau(tmp_path, ledger_url, keys):
    ledger = Ledger(ledger_url)
    tobacco = [Item(hs_code="2402200000", origin="CN", packages=10)]
    for n, (site, items) in enumerate([("bcp-a", tobacco), ("bcp-a", None), ("bcp-b", tobacco), ("bcp-b", None),
                                       ("bcp-b", None)]):
        record = make_record(reference=f"R-{n}", **({"items": items} if items else {}))
        ledger.record_routed(record.reference, 1, site, record.model_dump_json())
    ledger.close()
    app = create_app(RauConsoleSettings(ledger=ledger_url, users_db=tmp_path / "rau_console.db", keys_dir=keys[0]))
    for name, role in USERS.items():
        app.state.console.accounts.add_user(name, role, PASSWORD)
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
        yield app, client
    app.state.console.close()


def login(client, username: str) -> str:
    return log_in(client, username, PASSWORD, "/indicators")




def new_draft(client, csrf: str) -> int:
    r = client.post("/indicators/new", data={"csrf": csrf, "level": "central", "scope": "central"})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def save(client, csrf: str, draft: int, document) -> object:
    text = document if isinstance(document, str) else json.dumps(document)
    return client.post(f"/indicators/{draft}/json", data={"csrf": csrf, "document": text})


def test_a_draft_is_made_edited_in_json_and_every_error_shown_with_its_path(rau):
    app, client = rau
    assert client.get("/indicators").status_code == 303  # a login first
    csrf = login(client, "ana")
    draft = new_draft(client, csrf)
    page = client.get(f"/indicators/{draft}").text
    assert 'id="draft-status">draft<' in page and "format" in page

    bad_leaf = {**TOBACCO, "id": "C-BAD", "when": {"all": [TOBACCO["when"], {"field": "items.hs_code", "op": "nope",
                                                                             "value": "1"}]}}
    no_level = {k: v for k, v in TOBACCO.items() if k != "level"} | {"id": "C-NOLEVEL"}
    r = save(client, csrf, draft, a_set(TOBACCO, bad_leaf, no_level))
    assert r.status_code == 422
    paths = re.findall(r'data-path="([^"]+)"', r.text)
    assert paths == ["indicators[1].when.all[1].op", "indicators[2].level"]
    assert "unknown operator" in r.text and "C-BAD" in r.text  # the editor keeps what was typed
    assert save(client, csrf, draft, "{not json").status_code == 422
    entries = audit(app, "indicator_draft")
    assert [e.outcome for e in entries[:2]] == ["rejected", "rejected"]
    assert app.state.console.counters["indicator_draft:rejected"] == 2

    assert save(client, csrf, draft, a_set(TOBACCO)).status_code == 303
    page = client.get(f"/indicators/{draft}").text
    assert 'id="valid"' in page and "C-TOB-24" in page
    assert audit(app, "indicator_draft")[0].outcome == "done"


def test_the_one_indicator_form_adds_to_the_set_and_refuses_a_bad_field(rau):
    app, client = rau
    csrf = login(client, "ana")
    draft = new_draft(client, csrf)
    form = {"csrf": csrf, "id": "C-ORIGIN-CN", "title": "Goods from China", "field": "items.origin", "op": "eq",
            "value": "CN", "channel": "yellow", "priority": "5", "instructions": "Check the origin papers."}
    assert client.post(f"/indicators/{draft}/indicator", data=form).status_code == 303
    codes = {**form, "id": "C-APPLES", "field": "items.hs_code", "op": "prefix", "value": "0808"}
    assert client.post(f"/indicators/{draft}/indicator", data=codes).status_code == 303
    weight = {**form, "id": "C-HEAVY", "field": "gross_kg", "op": "gt", "value": "40000"}
    assert client.post(f"/indicators/{draft}/indicator", data=weight).status_code == 303
    stored = json.loads(app.state.console.ledger.draft(draft)["document"])
    assert [i["id"] for i in stored["indicators"]] == ["C-ORIGIN-CN", "C-APPLES", "C-HEAVY"]
    assert [i["when"]["value"] for i in stored["indicators"]] == ["CN", "0808", 40000]  # text stays text

    r = client.post(f"/indicators/{draft}/indicator", data={**form, "channel": "purple", "priority": "high"})
    assert r.status_code == 422
    assert 'data-error="priority"' in r.text and 'data-path="indicators[0].action"' in r.text
    assert audit(app, "indicator_draft")[0].outcome == "rejected"


def test_the_preview_counts_the_trucks_it_would_have_hit_per_site(rau):
    app, client = rau
    csrf = login(client, "ana")
    draft = new_draft(client, csrf)
    save(client, csrf, draft, a_set(TOBACCO))
    r = client.get(f"/indicators/{draft}/preview", params={"days": "7"})
    assert r.status_code == 200
    assert "2 of 5 truck(s)" in r.text
    sites = dict(re.findall(r'<tr data-site="([^"]+)"><td>[^<]+</td><td>\d+</td><td class="hit">(\d+)</td>', r.text))
    assert sites == {"bcp-a": "1", "bcp-b": "1"}
    assert re.search(r'data-indicator="C-TOB-24"><td>C-TOB-24</td><td class="hit">2<', r.text)

    r = client.get(f"/indicators/{draft}/preview", params={"days": "0"})
    assert r.status_code == 422 and "days:" in r.text
    assert audit(app, "indicator_preview")[0].outcome == "rejected"
    assert app.state.console.counters["indicator_preview:rejected"] == 1


def test_refusals_wrong_role_no_csrf_no_login_and_unknown_draft(rau):
    app, client = rau
    csrf = login(client, "mona")
    r = client.post("/indicators/new", data={"csrf": csrf, "level": "central", "scope": "central"})
    assert r.status_code == 403 and audit(app, "indicator_draft")[0].outcome == "refused"
    csrf = login(client, "ana")
    r = client.post("/indicators/new", data={"level": "central", "scope": "central"})
    assert r.status_code == 403 and "security token" in r.text
    assert client.post("/indicators/new", data={"csrf": csrf, "level": "planet", "scope": "x"}).status_code == 422
    assert client.get("/indicators/999").status_code == 404
    assert client.post("/indicators/999/submit", data={"csrf": csrf}).status_code == 404
    assert app.state.console.counters["indicator_draft:refused"] == 2
    client.cookies.clear()
    assert client.post("/indicators/new", data={"csrf": csrf}).status_code == 303  # to the login


def test_submitted_by_one_approved_by_another_signed_by_both_and_released(rau, keys):
    app, client = rau
    _, root = keys
    csrf = login(client, "ana")
    draft = new_draft(client, csrf)
    save(client, csrf, draft, a_set(TOBACCO))
    assert client.post(f"/indicators/{draft}/submit", data={"csrf": csrf}).status_code == 303
    assert save(client, csrf, draft, a_set()).status_code == 409  # a submitted set no longer changes
    r = client.post(f"/indicators/{draft}/approve", data={"csrf": csrf})
    assert r.status_code == 403 and audit(app, "indicator_approve")[0].outcome == "refused"  # an analyst

    # ana is also made a senior analyst: still the drafter, still refused
    app.state.console.accounts.add_user("ana", "senior_analyst", PASSWORD, replace=True)
    csrf = login(client, "ana")
    r = client.post(f"/indicators/{draft}/approve", data={"csrf": csrf})
    assert r.status_code == 403 and "second person" in r.text
    assert audit(app, "indicator_approve")[0].reason.startswith("a second person")
    assert app.state.console.counters["indicator_approve:refused"] == 2

    csrf = login(client, "sue")  # a senior analyst without a key in the keys directory
    r = client.post(f"/indicators/{draft}/approve", data={"csrf": csrf})
    assert r.status_code == 409 and "no signing key for sue" in r.text

    csrf = login(client, "sam")
    assert client.post(f"/indicators/{draft}/approve", data={"csrf": csrf}).status_code == 303
    row = app.state.console.ledger.draft(draft)
    assert (row["status"], row["version"], row["drafted_by"], row["approved_by"]) == ("approved", 1, "ana", "sam")
    history = client.get("/indicators").text
    assert re.search(rf'data-draft="{draft}">.*?approved.*?ana.*?sam', history)
    assert client.post(f"/indicators/{draft}/approve", data={"csrf": csrf}).status_code == 409  # once

    pending = app.state.console.ledger.bundles_pending()
    assert [(topic, retain) for _, topic, retain, _, _ in pending] == [(topics.INDICATORS_CENTRAL, True)]
    now = datetime.now(UTC)
    accepted = verify_bundle(pending[0][4], TrustState(root=root), site="bcp-a", region="north", now=now,
                             current=None, expected_slot="central:central")
    assert isinstance(accepted, Accepted), accepted  # both keys of the threshold-2 role signed
    assert accepted.version == 1 and accepted.indicators["indicators"][0]["id"] == "C-TOB-24"

    # Withdrawal: version 2 without the indicator, as a delta (first) and the full set.
    csrf = login(client, "ana")
    second = new_draft(client, csrf)
    assert "C-TOB-24" in app.state.console.ledger.draft(second)["document"]  # from the approved version
    save(client, csrf, second, a_set())
    client.post(f"/indicators/{second}/submit", data={"csrf": csrf})
    csrf = login(client, "sam")
    assert client.post(f"/indicators/{second}/approve", data={"csrf": csrf}).status_code == 303
    pending = app.state.console.ledger.bundles_pending()[1:]
    assert [(retain, label) for _, _, retain, label, _ in pending] == [
        (False, "delta bundle central:central v2"), (True, "full bundle central:central v2")]
    current = ActiveSetInfo(version=1, sha256=accepted.sha256, indicators=accepted.indicators)
    delta = verify_bundle(pending[0][4], accepted.state, site="bcp-a", region="north", now=now, current=current,
                          expected_slot="central:central")
    assert isinstance(delta, Accepted) and delta.kind == "delta" and delta.indicators["indicators"] == []


def test_a_submission_overtaken_by_a_newer_approval_is_refused_and_an_editor_may_not_approve(rau):
    app, client = rau
    csrf = login(client, "ana")
    first, second = new_draft(client, csrf), new_draft(client, csrf)
    for draft in (first, second):
        save(client, csrf, draft, a_set(TOBACCO))
        client.post(f"/indicators/{draft}/submit", data={"csrf": csrf})
    csrf = login(client, "sam")
    assert client.post(f"/indicators/{first}/approve", data={"csrf": csrf}).status_code == 303
    r = client.post(f"/indicators/{second}/approve", data={"csrf": csrf})
    assert r.status_code == 409 and "newer version" in r.text
    assert audit(app, "indicator_approve")[0].outcome == "rejected"

    third = new_draft(client, csrf)  # sam drafts; sue edits it; sue may not approve, sam neither
    csrf = login(client, "sue")
    save(client, csrf, third, a_set())
    client.post(f"/indicators/{third}/submit", data={"csrf": csrf})
    assert client.post(f"/indicators/{third}/approve", data={"csrf": csrf}).status_code == 403
    csrf = login(client, "sam")
    assert client.post(f"/indicators/{third}/approve", data={"csrf": csrf}).status_code == 403


def test_a_first_draft_starts_from_the_set_released_with_central_release_and_numbers_after_it(rau, keys):
    from edge_agent.central.release import release
    from edge_agent.sync.bundles import build_full, pack

    app, client = rau
    now = datetime.now(UTC)
    body = build_full(a_set(TOBACCO), level="central", scope="central", version=4, expires=now + timedelta(days=3),
                      created=now)
    ledger = app.state.console.ledger
    release(ledger, pack(body, [(keys[0] / "sam.key").read_text().strip()]))
    csrf = login(client, "ana")
    draft = new_draft(client, csrf)
    assert json.loads(ledger.draft(draft)["document"])["indicators"][0]["id"] == "C-TOB-24"
    assert client.post(f"/indicators/{draft}/submit", data={"csrf": csrf}).status_code == 303
    assert ledger.draft(draft)["version"] == 5


def test_a_drafter_without_a_key_submits_unsigned_and_the_sites_refuse_one_signature_of_two(rau, keys):
    app, client = rau
    csrf = login(client, "sue")  # no sue.key in the keys directory
    draft = new_draft(client, csrf)
    save(client, csrf, draft, a_set(TOBACCO))
    assert client.post(f"/indicators/{draft}/submit", data={"csrf": csrf}).status_code == 303
    assert json.loads(app.state.console.ledger.draft(draft)["signed"])["full"]["signatures"] == []
    csrf = login(client, "sam")
    assert client.post(f"/indicators/{draft}/approve", data={"csrf": csrf}).status_code == 303
    [(_, _, _, _, payload)] = app.state.console.ledger.bundles_pending()
    verdict = verify_bundle(payload, TrustState(root=keys[1]), site="bcp-a", region="north", now=datetime.now(UTC),
                            current=None, expected_slot="central:central")
    assert not isinstance(verdict, Accepted) and verdict.reason == "below_threshold"
