"""The presets in firmware_config/scales/: one per protocol, each a valid scale table."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edge_agent.config import ScaleConfig
from edge_agent.devices.scale.protocols import PROTOCOL_NAMES
from edge_agent.errors import ConfigError
from edge_agent.site import load_site

PRESETS = Path(__file__).resolve().parents[3] / "firmware_config" / "scales"


def test_one_preset_per_protocol():
    assert sorted(p.stem for p in PRESETS.glob("*.toml")) == sorted(PROTOCOL_NAMES)


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.toml")), ids=lambda p: p.stem)
def test_preset_is_a_valid_scale_table(path):
    preset = tomllib.loads(path.read_text())
    config = ScaleConfig(url="/dev/ttyUSB0", **preset)
    assert config.protocol == path.stem


def test_unknown_protocol_is_a_configuration_error_with_its_key_and_line(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[site]\nid = "x"\nregion = "y"\n[policy]\nrandom_secret = "test-site-secret-0123456789"\n'
                    '[[lanes]]\nid = "L1"\n[lanes.scale]\nurl = "/dev/ttyUSB0"\n'
                    'protocol = "toledo-x"\n')
    with pytest.raises(ConfigError) as refused:
        load_site(site)
    assert refused.value.problems == [
        f"line 10: lanes[0].scale.protocol: unknown scale protocol 'toledo-x'; known: {', '.join(PROTOCOL_NAMES)}"]
