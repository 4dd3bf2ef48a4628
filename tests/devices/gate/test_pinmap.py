"""Pin maps: the shipped boards load, and wiring that cannot work is refused with key and reason."""

from __future__ import annotations

import pytest

from edge_agent.config import GateConfig
from edge_agent.devices.gate.pinmap import PINMAP_DIRS, check_site, known_pinmaps, load_pinmap, resolve_pins
from edge_agent.errors import ConfigError


def problems(**fields) -> list[str]:
    with pytest.raises(ConfigError) as err:
        resolve_pins(GateConfig(**fields), lane="L1")
    return err.value.problems


def test_shipped_maps_load():
    assert {"rpi4", "rpi5", "waveshare-rpi-relay"} <= set(known_pinmaps())
    for board in ("rpi4", "rpi5"):
        pinmap = load_pinmap(board)
        assert len(pinmap.pins) == 26  # GPIO2..27 on the 40-pin header
        assert set(pinmap.reserved) == {"GPIO0", "GPIO1"}
        headers = [p.header for p in pinmap.pins.values()]
        assert len(set(headers)) == len(headers)


def test_default_wiring_resolves_and_accepts_header_names():
    pins = resolve_pins(GateConfig(barrier_open_pin="BOARD11", light_red_pin="J8:15", light_green_pin="BCM23"))
    assert pins["barrier_open"] == "GPIO17" and pins["light_red"] == "GPIO22" and pins["light_green"] == "GPIO23"
    assert "beacon" not in pins  # empty = not wired


def test_pin_used_twice():
    assert problems(light_green_pin="GPIO17") == [
        "lanes[L1].gate.light_green_pin: GPIO17 is already used by lanes[L1].gate.barrier_open_pin"]


def test_same_pin_under_another_name_is_still_used_twice():
    assert problems(light_green_pin="BOARD11")[0].endswith("GPIO17 is already used by lanes[L1].gate.barrier_open_pin")


def test_unknown_board_lists_known_ones():
    (problem,) = problems(pinmap="rpi9")
    assert problem.startswith("lanes[L1].gate.pinmap: unknown board or HAT 'rpi9' (known: ")
    assert "rpi4" in problem


def test_reserved_and_unknown_pins():
    found = problems(loop_exit_pin="GPIO1", beacon_pin="GPIO31", buzzer_pin="pin seven")
    assert ("lanes[L1].gate.loop_exit_pin: GPIO1 is reserved: ID_SC: the HAT identification EEPROM (header pin 28)"
            in found)
    assert "lanes[L1].gate.beacon_pin: GPIO31 is not on the rpi4 header" in found
    assert any(p.startswith("lanes[L1].gate.buzzer_pin: 'pin seven' is not a pin name") for p in found)


def test_input_on_fixed_pull_up_pin_needs_active_low():
    (problem,) = problems(loop_arrival_pin="GPIO2")
    assert "GPIO2 has a fixed pull-up" in problem
    assert resolve_pins(GateConfig(loop_arrival_pin="GPIO2", input_pull_up=True))["loop_arrival"] == "GPIO2"


def test_pin_factory_the_board_cannot_use():
    assert problems(pinmap="rpi5", pin_factory="rpigpio") == [
        "lanes[L1].gate.pin_factory: 'rpigpio' does not work on rpi5 (use one of ['lgpio', 'mock'])"]


def test_relay_hat_channels_are_outputs_with_their_polarity():
    config = {"hat": "waveshare-rpi-relay", "active_high": False, "barrier_open_pin": "RELAY1",
              "barrier_close_pin": "RELAY2", "beacon_pin": "RELAY3"}
    pins = resolve_pins(GateConfig(**config))
    assert (pins["barrier_open"], pins["barrier_close"], pins["beacon"]) == ("GPIO26", "GPIO20", "GPIO21")
    found = problems(**{**config, "active_high": True, "loop_exit_pin": "GPIO21", "beacon_pin": ""})
    assert "lanes[L1].gate.active_high: the waveshare-rpi-relay relays are active low: set active_high = false" in found
    assert "lanes[L1].gate.loop_exit_pin: GPIO21 cannot be an input: it is output-only (HAT RELAY3)" in found


def test_output_on_an_input_only_pin(tmp_path):
    board = (PINMAP_DIRS[1] / "rpi4.toml").read_text()
    board = board.replace("GPIO17 = { header = 11 }", 'GPIO17 = { header = 11, modes = ["in"], note = "opto input" }')
    path = tmp_path / "io-board.toml"
    path.write_text(board.replace('name = "rpi4"', 'name = "io-board"'))
    (problem,) = problems(pinmap=str(path))
    assert problem == "lanes[L1].gate.barrier_open_pin: GPIO17 cannot be an output: it is input-only"


def test_pulse_mode_needs_a_close_output_held_mode_does_not():
    assert problems(barrier_close_pin="") == [
        "lanes[L1].gate.barrier_close_pin: required when barrier_mode = \"pulse\""]
    assert "barrier_close" not in resolve_pins(GateConfig(barrier_mode="held", barrier_close_pin=""))


def test_required_input_missing():
    assert problems(closed_limit_pin="") == ["lanes[L1].gate.closed_limit_pin: required, no pin given"]


def test_every_problem_at_once():
    assert len(problems(light_green_pin="GPIO17", loop_exit_pin="GPIO0", pin_factory="native", pinmap="rpi5")) == 3


def test_two_lanes_on_one_board_must_not_share_pins():
    lane2 = GateConfig(barrier_open_pin="GPIO4", barrier_close_pin="GPIO7", light_red_pin="GPIO8",
                       light_green_pin="GPIO9", loop_arrival_pin="GPIO10", loop_on_scale_pin="GPIO11",
                       loop_under_boom_pin="GPIO12", loop_exit_pin="GPIO16", open_limit_pin="GPIO20",
                       closed_limit_pin="GPIO17")
    found = check_site([("L1", GateConfig()), ("L2", lane2)])
    assert found == ["lanes[L2].gate.closed_limit_pin: GPIO17 is already used by lanes[L1].gate.barrier_open_pin"]
    assert check_site([("L1", GateConfig()), ("L2", lane2.model_copy(update={"closed_limit_pin": "GPIO21"}))]) == []
