"""`edge-agent gpio test` on MockFactory: every output switched, every input shown live."""

from __future__ import annotations

from click.testing import CliRunner

from edge_agent.config import GateConfig
from edge_agent.devices.gate.cli import Bench, gpio

SITE = """
[site]
id = "xk-test"
region = "xk"

[[lanes]]
id = "L1"
[lanes.gate]
pin_factory = "mock"
beacon_pin = "GPIO18"

[[lanes]]
id = "L2"
[lanes.gate]
pin_factory = "mock"
light_green_pin = "GPIO17"
"""


def test_sequence_switches_every_output_and_ends_safe(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    result = CliRunner().invoke(gpio, ["test", "--config", str(site), "--lane", "L1", "--sequence", "--on-s", "0.01"])
    assert result.exit_code == 0, result.output
    for role, pin in [("barrier_open", "GPIO17"), ("barrier_close", "GPIO27"), ("light_green", "GPIO23"),
                      ("beacon", "GPIO18")]:
        assert f"output {role:<16} {pin:<7} ON" in result.output
        assert f"output {role:<16} {pin:<7} off" in result.output
    assert f"output {'light_red':<16} {'GPIO22':<7} off" in result.output  # the red lamp, tested dark
    assert "input  loop_arrival     GPIO5   idle" in result.output
    assert result.output.rstrip().endswith("all outputs off, red lit")


def test_interactive_toggles_by_number():
    result = CliRunner().invoke(gpio, ["test", "--mock"], input="1\n1\ni\nbogus\nq\n")
    assert result.exit_code == 0, result.output
    assert "[1] barrier_open (GPIO17)" in result.output
    on = result.output.index("barrier_open     GPIO17  ON")
    assert result.output.index("barrier_open     GPIO17  off") > on
    assert "? 'bogus'" in result.output


def test_bad_wiring_is_refused_with_the_key(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    result = CliRunner().invoke(gpio, ["test", "--config", str(site), "--lane", "L2", "--watch", "0"])
    assert result.exit_code != 0
    assert "lanes[L2].gate.light_green_pin: GPIO17 is already used by lanes[L2].gate.barrier_open_pin" in result.output


def test_unknown_lane(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    result = CliRunner().invoke(gpio, ["test", "--config", str(site), "--lane", "L9", "--watch", "0"])
    assert result.exit_code != 0 and "no lane 'L9'" in result.output


def test_inputs_are_reported_live(factory):
    lines: list[str] = []
    bench = Bench(GateConfig(pin_factory="mock"), factory, echo=lines.append)
    try:
        factory.pin("GPIO5").drive_high()
        factory.pin("GPIO24").drive_high()
        factory.pin("GPIO5").drive_low()
        assert lines == [
            "  input  loop_arrival     GPIO5   -> ACTIVE",
            "  input  open_limit       GPIO24  -> ACTIVE",
            "  input  loop_arrival     GPIO5   -> idle",
        ]
        assert bench.levels()["open_limit"] is True
    finally:
        bench.close()
