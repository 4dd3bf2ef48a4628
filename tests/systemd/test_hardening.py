"""The unit files: systemd's own exposure score, and the settings the fail-safe design needs."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
MAX_EXPOSURE = 2.0


def exposure(unit: Path) -> float:
    """`systemd-analyze security --offline=yes` on a unit file that is not installed."""
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is needed (Debian package: systemd)"
    result = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


def directives(unit: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_agent_unit_exposure_at_most_2():
    assert exposure(UNITS / "edge-agent.service") <= MAX_EXPOSURE


def test_simulator_unit_exposure_at_most_2(tmp_path):
    # A template is scored through an instance name.
    instance = tmp_path / "edge-agent-sim@scale.service"
    instance.write_text((UNITS / "edge-agent-sim@.service").read_text())
    assert exposure(instance) <= MAX_EXPOSURE


def test_an_unhardened_unit_scores_high(tmp_path):
    # The measuring stick itself: the score must be able to fail.
    plain = tmp_path / "plain.service"
    plain.write_text("[Service]\nExecStart=/bin/true\n")
    assert exposure(plain) > 9.0


def test_agent_unit_watchdog_restart_and_devices():
    d = directives(UNITS / "edge-agent.service")
    assert d["Type"] == ["notify"]
    assert int(d["WatchdogSec"][0]) > 0
    assert d["Restart"] == ["always"] and "StartLimitBurst" in d and "StartLimitIntervalSec" in d
    assert d["NoNewPrivileges"] == ["yes"] and d["CapabilityBoundingSet"] == [""]
    assert d["ProtectSystem"] == ["strict"] and d["StateDirectory"] == ["edge-agent"]
    allowed = " ".join(d["DeviceAllow"])
    for device in ("char-ttyUSB", "char-gpiochip", "char-video4linux"):
        assert device in allowed
    assert "PrivateUsers" not in d  # it would break the dialout/gpio/video group access
    assert set(d["SupplementaryGroups"][0].split()) == {"dialout", "gpio", "video"}


@pytest.mark.parametrize("name", ["edge-agent.service", "edge-agent-sim@.service"])
def test_units_parse_as_ini(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((UNITS / name).read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
