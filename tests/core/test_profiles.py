"""Indicator files a command wrote reach the rules in force and the RAU, each once."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from testkit.outputs import Recorder

from edge_agent.config import load_config
from edge_agent.core import Core
from edge_agent.core.rules_in_force import RulesAssessor
from edge_agent.local_rules.cli import indicators
from edge_agent.models import IndicatorFilesChanged, LocalIndicatorSaved
from edge_agent.outputs import OutputBus
from edge_agent.store import Store

ROOT = Path(__file__).resolve().parents[2]
ORANGES = ["--id", "L-ORANGES", "--title", "Oranges from AL", "--channel", "yellow", "--author", "lara",
           "--when", '{"field":"items.hs_code","op":"prefix","value":"0805"}']


@pytest.fixture
def site(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(f"""
[site]
id = "bcp-test"
region = "north"
data_dir = "{tmp_path / 'data'}"
[[lanes]]
id = "L1"
[policy]
random_secret = "profiles-test-secret-01"
[rules]
indicator_files = ["{ROOT / 'firmware_config' / 'indicators' / 'demo.json'}"]
""")
    return path


def start_core(site: Path) -> Core:
    config = load_config(site)
    data_dir = config.site.data_dir
    store = Store.open(data_dir / "agent.db")
    bus = OutputBus()
    bus.add(Recorder())
    return Core(config, store, RulesAssessor.for_site(config, data_dir), outputs=bus)


def add_local(site: Path, *extra: str) -> str:
    result = CliRunner().invoke(indicators, ["add-local", "--config", str(site), *ORANGES, *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_local_indicator_written_by_the_command_is_taken_and_sent_once(site):
    add_local(site)
    core = start_core(site)
    assert core.assessor.rules.get("L-ORANGES") is not None  # taken at start
    core.handle(IndicatorFilesChanged(reload=False, source="start"))
    (sent,) = core.store.outbox_payloads("local_indicator")
    assert (sent["indicator"]["id"], sent["indicator"]["version"], sent["user"]) == ("L-ORANGES", 1, "lara")
    core.handle(IndicatorFilesChanged(reload=True, source="sighup"))
    assert len(core.store.outbox_payloads("local_indicator")) == 1  # nothing new: nothing sent again

    add_local(site, "--instructions", "Check the phytosanitary certificate.")  # version 2, agent running
    core.handle(IndicatorFilesChanged(reload=True, source="sighup"))
    assert core.assessor.rules.get("L-ORANGES").instructions == "Check the phytosanitary certificate."
    assert [p["indicator"]["version"] for p in core.store.outbox_payloads("local_indicator")] == [1, 2]
    core.store.close()


def test_the_consoles_edit_is_not_sent_twice_by_the_next_reload(site):
    core = start_core(site)
    core.handle(LocalIndicatorSaved(indicator={"id": "L-MELONS", "title": "Melons", "action": {"channel": "yellow"},
                                               "when": {"field": "items.hs_code", "op": "prefix", "value": "0807"}},
                                    user="lara", reason="season starts"))
    assert [p["indicator"]["id"] for p in core.store.outbox_payloads("local_indicator")] == ["L-MELONS"]
    core.handle(IndicatorFilesChanged(reload=True, source="sighup"))
    assert [p["indicator"]["id"] for p in core.store.outbox_payloads("local_indicator")] == ["L-MELONS"]
    core.store.close()


def test_an_imported_set_is_reported_and_a_bad_file_leaves_the_set_in_force(site, tmp_path):
    core = start_core(site)
    regional = tmp_path / "north.json"
    regional.write_text('{"version": "north-3", "indicators": [{"id": "R-FRUIT", "level": "regional",'
                        ' "when": {"field": "items.hs_code", "op": "prefix", "value": "08"},'
                        ' "action": {"channel": "yellow"}}]}')
    result = CliRunner().invoke(indicators, ["import", str(regional), "--config", str(site)])
    assert result.exit_code == 0, result.output
    core.handle(IndicatorFilesChanged(reload=True, source="sighup"))
    assert core.assessor.rules.get("R-FRUIT") is not None
    (imported,) = core.store.outbox_payloads("indicator_set_imported")
    assert (imported["file"], imported["version"]) == ("north.json", "north-3")
    # A file broken behind the agent's back: refused, logged, counted; the set in force stays.
    (core.store.path.parent / "indicators" / "north.json").write_text("{not json")
    core.handle(IndicatorFilesChanged(reload=True, source="sighup"))
    assert core.counters["rules_reload_failed"] == 1 and core.assessor.rules.get("R-FRUIT") is not None
    core.store.close()
