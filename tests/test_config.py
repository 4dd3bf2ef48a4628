"""Configuration errors: one test per class of error, each naming key path and line."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from edge_agent.config import AgentConfig, load_config, parse_config
from edge_agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "firmware_config" / "site.example.toml"

MINIMAL = """
[site]
id = "bcp-1"
region = "north"

[[lanes]]
id = "L1"
"""


def problems(text):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "site.toml")
    return info.value.problems


def test_the_minimal_site_loads_with_defaults():
    config = parse_config(MINIMAL)
    assert config.lanes[0].timeouts.plate_s == 60
    assert config.policy.channel("red").gate == "inspection"


def test_unknown_key_is_an_error_with_its_path_and_line():
    assert problems(MINIMAL + "colour = 'blue'\n") == ["line 8: lanes[0].colour: unknown key"]


def test_plate_countries_must_have_a_grammar(tmp_path):
    from edge_agent.site import load_site

    site = tmp_path / "site.toml"
    text = MINIMAL.replace('region = "north"', 'region = "north"\nplate_countries = ["SRB", "NMK"]')
    text += '[policy]\nrandom_secret = "test-site-secret-0123456789"\n'
    site.write_text(text)
    assert load_site(site).site.plate_countries == ("SRB", "NMK")
    site.write_text(text.replace('"NMK"', '"XX"'))
    with pytest.raises(ConfigError) as refused:
        load_site(site)
    (problem,) = refused.value.problems
    assert problem.startswith("line 5: site.plate_countries: no plate grammar for XX; known: RKS, AL, SRB")


def test_missing_required_key():
    assert problems("[site]\nid = 'x'\n[[lanes]]\nid='L1'\n") == ["line 1: site.region: required key is missing"]


def test_wrong_type_names_the_key_in_the_second_lane():
    text = MINIMAL + "[[lanes]]\nid = 'L2'\n[lanes.timeouts]\nplate_s = 'soon'\n"
    [problem] = problems(text)
    assert problem.startswith("line 11: lanes[1].timeouts.plate_s:")


def test_out_of_range_value():
    text = MINIMAL + "[lanes.scale]\nurl = '/dev/ttyUSB0'\nbaudrate = 0\n"
    [problem] = problems(text)
    assert problem.startswith("line 10: lanes[0].scale.baudrate: Input should be greater than 0")


def test_cross_field_rule_names_the_table():
    [problem] = problems(MINIMAL + "[policy]\ndefault_channel = 'purple'\n")
    assert "policy" in problem and "purple" in problem


def test_duplicate_lane_ids():
    [problem] = problems(MINIMAL + "[[lanes]]\nid = 'L1'\n")
    assert "lane ids used twice" in problem


def test_every_problem_is_reported_at_once():
    text = MINIMAL.replace('region = "north"', 'region = "north"\nfoo = 1') + "bar = 2\n"
    assert len(problems(text)) == 2


def test_not_toml_at_all():
    [problem] = problems("[site\nid=")
    assert problem.startswith("not valid TOML")


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.toml")
    assert "cannot read" in str(info.value)


def test_the_example_site_file_is_valid_and_documents_every_key():
    config = load_config(EXAMPLE)
    assert isinstance(config, AgentConfig)
    text = EXAMPLE.read_text()
    missing = sorted(k for k in _all_keys(AgentConfig) if k not in text)
    assert missing == []


def _all_keys(model: type[BaseModel]) -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        for arg in _model_types(field.annotation):
            keys |= _all_keys(arg)
    return keys


def _model_types(annotation):
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in getattr(annotation, "__args__", ()):
        yield from _model_types(arg)
