"""The udev rules parse as udev(7) rules and name the devices the agent expects."""

from __future__ import annotations

import re
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "firmware_config" / "udev" / "70-edge-agent.rules"
# KEY or KEY{attr}, an operator, a double-quoted value (udev(7), "Rules files").
PAIR = re.compile(r'\s*([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)')
MATCH_KEYS = {"SUBSYSTEM", "KERNEL", "ATTR", "ATTRS", "ENV"}
ASSIGN_KEYS = {"SYMLINK", "GROUP", "MODE"}


def parse(line: str) -> list[tuple[str, str, str]]:
    pairs, pos = [], 0
    while pos < len(line):
        m = PAIR.match(line, pos)
        assert m, f"cannot parse at column {pos}: {line!r}"
        pairs.append((m.group(1), m.group(2), m.group(3)))
        pos = m.end()
    return pairs


def rules() -> list[list[tuple[str, str, str]]]:
    lines = RULES.read_text().splitlines()
    return [parse(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_every_rule_parses_with_known_keys_and_operators():
    parsed = rules()
    assert len(parsed) >= 8
    for pairs in parsed:
        for key, op, _ in pairs:
            base = key.split("{")[0]
            if op in ("==", "!="):
                assert base in MATCH_KEYS, key
            else:
                assert base in ASSIGN_KEYS and op in ("=", "+="), key
        assert any(op in ("==", "!=") for _, op, _ in pairs), "a rule without a match applies to every device"


def test_gpio_serial_and_video_devices_are_covered():
    parsed = rules()
    assigned = {(k.split("{")[0], v) for pairs in parsed for k, op, v in pairs if op in ("=", "+=")}
    assert ("GROUP", "gpio") in assigned and ("GROUP", "dialout") in assigned and ("GROUP", "video") in assigned
    vendors = {v for pairs in parsed for k, _, v in pairs if k == "ATTRS{idVendor}"}
    assert {"0403", "067b", "10c4", "1a86"} <= vendors  # FTDI, Prolific, Silicon Labs, WCH
    links = [v for pairs in parsed for k, _, v in pairs if k == "SYMLINK"]
    assert links and all(link.startswith("edge-agent/") for link in links)


def test_parser_rejects_a_broken_rule():
    try:
        parse('SUBSYSTEM=="tty", GROUP=dialout')
    except AssertionError:
        return
    raise AssertionError("an unquoted value must not parse")
