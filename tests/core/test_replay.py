"""A stored crossing assessed again with the indicator set and policy of its time."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory
from testkit import console_rig as rig

from edge_agent.core.replay import ReplayError, replay
from edge_agent.local_rules import assess
from edge_agent.local_rules.policy import keyed_fraction
from edge_agent.models import LocalIndicatorSaved, VehicleLeft

WATCH_PLATE = {"id": "L-WATCH-KS123", "title": "Plate on the local watch list", "action": {"channel": "red"},
               "when": {"field": "plate_read", "op": "eq", "value": "KS123AB"}}


@pytest.fixture
def agent(tmp_path):
    bench = rig.LaneBench(rig.site_config(tmp_path), pin_factory=MockFactory(), data_dir=tmp_path).start()
    yield bench
    bench.stop()


def in_force(agent, indicator_id: str) -> None:
    """Wait until the agent assesses with `indicator_id` (the counters move before the commit)."""
    rig.wait_for(lambda: any(i.id == indicator_id for i in agent.assessor.rules.indicators), indicator_id)


def test_a_crossing_replays_with_the_set_of_its_time_not_todays(agent, tmp_path):
    snap = rig.drive_in(agent, "L1", rig.tobacco_record(), "KS123AB", 24100)
    crossing = snap["crossing"]
    agent.post(VehicleLeft(lane="L1", direction="reverse"))
    # Since then the local analyst added an indicator this truck would also hit today.
    agent.post(LocalIndicatorSaved(indicator=WATCH_PLATE, user="lara", reason="tip-off"))
    in_force(agent, "L-WATCH-KS123")
    stored = agent.metrics_store.latest_assessment(crossing)
    today = assess(rig.tobacco_record(), json_seen(stored), agent.assessor.rules, agent.config.policy,
                   now=agent.assessor.rules.issued_at or rig_now())
    assert "L-WATCH-KS123" in {h.indicator_id for h in today.hits}  # today's set would say more

    result = replay(agent.config, tmp_path, crossing)
    assert result.same, result.to_json()
    assert result.replayed["hits"] == ["L-TOBACCO-24"] and result.replayed["channel"] == "red"
    assert result.stored == result.replayed

    out = CliRunner().invoke(_assess(), ["--replay", crossing, "--config", str(site_file(agent, tmp_path))])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["same"] is True


def test_a_set_missing_from_the_archive_is_said_not_guessed(agent, tmp_path):
    snap = rig.drive_in(agent, "L1", rig.tobacco_record(), "KS123AB", 24100)
    shutil.rmtree(tmp_path / "rules-archive")
    result = replay(agent.config, tmp_path, snap["crossing"])
    assert not result.same and result.replayed is None
    assert any("not complete in the archive" in note for note in result.notes)
    out = CliRunner().invoke(_assess(), ["--replay", snap["crossing"], "--config", str(site_file(agent, tmp_path))])
    assert out.exit_code == 1 and "not complete in the archive" in out.output


OLD_SECRET, NEW_SECRET = "console-test-secret-0123", "a-new-secret-of-this-site-2"


def drawn_by_the_old_secret_only() -> str:
    """A reference the old secret draws at 50 % and the new one does not: only a replay
    with the secret of its time gives the stored answer."""
    return next(ref for ref in (f"EX-24-{n:04d}" for n in range(1000, 2000))
                if keyed_fraction(OLD_SECRET, "random|" + ref) * 100 < 50
                and keyed_fraction(NEW_SECRET, "random|" + ref) * 100 >= 50)


@pytest.fixture
def drawing_agent(tmp_path):
    """A site that draws half of the green trucks at random, so the draw itself is replayed."""
    config = rig.site_config(tmp_path)
    assert config.policy.random_secret == OLD_SECRET
    config = config.model_copy(update={"policy": config.policy.model_copy(update={"random_share_pct": 50.0})})
    bench = rig.LaneBench(config, pin_factory=MockFactory(), data_dir=tmp_path).start()
    yield bench
    bench.stop()


def test_the_policy_and_secret_of_its_time_are_used_after_both_changed(drawing_agent, tmp_path):
    snap = rig.drive_in(drawing_agent, "L1", rig.plain_record(reference=drawn_by_the_old_secret_only()),
                        "BG555XY", 18000)
    stored = drawing_agent.metrics_store.latest_assessment(snap["crossing"])
    assert json.loads(stored["body"])["random_selected"] is True
    old = drawing_agent.config.policy
    # Since then the office stopped drawing and rotated the secret, keeping the old one.
    today = drawing_agent.config.model_copy(update={"policy": old.model_copy(update={
        "random_share_pct": 0.0, "random_secret": NEW_SECRET,
        "random_secret_version": 2, "retired_random_secrets": {1: OLD_SECRET}})})

    result = replay(today, tmp_path, snap["crossing"])
    assert result.same and result.replayed["random_selected"] is True, result.to_json()
    assert result.notes == []

    forgot = today.model_copy(update={"policy": today.policy.model_copy(update={"retired_random_secrets": {}})})
    result = replay(forgot, tmp_path, snap["crossing"])
    assert any("secret version 1 is not kept" in note for note in result.notes)
    assert result.differences == ["channel: yellow then, green now", "random selection: True then, False now"]


def test_an_archived_document_altered_since_is_refused(agent, tmp_path):
    snap = rig.drive_in(agent, "L1", rig.tobacco_record(), "KS123AB", 24100)
    source = next(s for s in agent.metrics_store.rules_in_force_at(rig_now())[1] if s["label"].startswith("file:"))
    path = tmp_path / "rules-archive" / f"{source['sha256']}.json"
    document = json.loads(path.read_text())
    document["indicators"] = [i for i in document["indicators"] if i["id"] != "L-TOBACCO-24"]
    path.write_text(json.dumps(document))

    result = replay(agent.config, tmp_path, snap["crossing"])
    assert result.replayed is None and any("altered" in note for note in result.notes), result.to_json()


def test_a_stored_verdict_that_no_longer_follows_is_shown_and_exits_1(agent, tmp_path):
    import sqlite3

    snap = rig.drive_in(agent, "L1", rig.tobacco_record(), "KS123AB", 24100)
    agent.post(VehicleLeft(lane="L1", direction="reverse"))
    rig.wait_for(lambda: not agent.core.snapshot()["L1"]["crossing"], "lane L1 free")
    with sqlite3.connect(tmp_path / "agent.db") as db:  # someone edits the record of the verdict
        (body,) = db.execute("SELECT body FROM assessments WHERE crossing_id = ?", [snap["crossing"]]).fetchone()
        edited = json.loads(body)
        edited["channel"] = "green"
        db.execute("UPDATE assessments SET body = ? WHERE crossing_id = ?", [json.dumps(edited), snap["crossing"]])

    result = replay(agent.config, tmp_path, snap["crossing"])
    assert result.differences == ["channel: green then, red now"]
    out = CliRunner().invoke(_assess(), ["--replay", snap["crossing"], "--config", str(site_file(agent, tmp_path))])
    assert out.exit_code == 1 and json.loads(out.output)["differences"] == ["channel: green then, red now"]


def test_an_unknown_crossing_is_a_clear_error(agent, tmp_path):
    with pytest.raises(ReplayError, match="no assessment of crossing 'nope'"):
        replay(agent.config, tmp_path, "nope")


def test_each_change_of_the_set_in_force_is_archived_with_its_time(agent, tmp_path):
    before = rig_now()
    first = agent.metrics_store.rules_in_force_at(before)
    agent.post(LocalIndicatorSaved(indicator=WATCH_PLATE, user="lara", reason="tip-off"))
    # The counter moves when the core takes the event, before its transaction commits.
    second = rig.wait_for(lambda: (now := agent.metrics_store.rules_in_force_at(rig_now())) and now[0] != first[0]
                          and now, "the new set recorded in force")
    assert first is not None
    assert agent.metrics_store.rules_in_force_at(before) == first  # the earlier one still answers for its time
    first_labels = [s["label"] for s in first[1]]
    second_labels = [s["label"] for s in second[1]]
    assert any(label.endswith("local.json") for label in second_labels)
    assert not any(label.endswith("local.json") for label in first_labels)
    for source in second[1]:
        assert (tmp_path / "rules-archive" / f"{source['sha256']}.json").is_file()


# --------------------------------------------------------------------------- helpers

def rig_now():
    from edge_agent.models import utcnow

    return utcnow()


def json_seen(row):
    from edge_agent.models import Assessment

    return Assessment.model_validate_json(row["body"]).seen


def _assess():
    from edge_agent.local_rules.cli import assess_command

    return assess_command


def site_file(agent, tmp_path):
    """The rig's configuration as a site file, for the command."""
    config = agent.config
    indicators = ", ".join(f'"{p}"' for p in config.rules.indicator_files)
    path = tmp_path / "site.toml"
    path.write_text(f'[site]\nid = "{config.site.id}"\nregion = "{config.site.region}"\ndata_dir = "{tmp_path}"\n'
                    f'[policy]\nrandom_secret = "{config.policy.random_secret}"\nrandom_share_pct = 0.0\n'
                    f'[rules]\nindicator_files = [{indicators}]\n[[lanes]]\nid = "L1"\n')
    return path
