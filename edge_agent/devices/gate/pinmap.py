"""Board pin maps: which pins a lane's gate may use, checked before any pin is touched.

A pin map is a TOML file in `firmware_config/pinmaps/` (or any path): the board's GPIOs
with their header position, reserved pins with the reason, fixed pulls, the modes a pin
allows, and the pin factories that work on that board. A relay HAT map names channels
(RELAY1 ...) on top of a board and claims their GPIOs as outputs.

`resolve_pins(config)` turns a lane's GateConfig into {role: "GPIOn"} or raises one
ConfigError that lists every problem with its key and reason: a pin used twice, an
output on an input-only pin, a reserved pin, an unknown board, a pin factory the board
cannot use. A technician on a ladder gets the whole list at once.

    >>> pins = resolve_pins(GateConfig(pinmap="rpi4"))
    >>> pins["barrier_open"]
    'GPIO17'
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent import shipped
from edge_agent.config import GateConfig
from edge_agent.errors import ConfigError

# The installed maps (a technician may add or edit one) before the ones the agent carries.
PINMAP_DIRS = (
    Path("/etc/edge-agent/pinmaps"),
    shipped.path("firmware_config", "pinmaps"),
)

# role -> GateConfig key; outputs are driven, inputs are read.
OUTPUT_KEYS = {
    "barrier_open": "barrier_open_pin",
    "barrier_close": "barrier_close_pin",
    "light_red": "light_red_pin",
    "light_green": "light_green_pin",
    "beacon": "beacon_pin",
    "buzzer": "buzzer_pin",
    "permission": "permission_pin",
}
INPUT_KEYS = {
    "loop_arrival": "loop_arrival_pin",
    "loop_on_scale": "loop_on_scale_pin",
    "loop_under_boom": "loop_under_boom_pin",
    "loop_exit": "loop_exit_pin",
    "open_limit": "open_limit_pin",
    "closed_limit": "closed_limit_pin",
    "override_key": "override_key_pin",
}
REQUIRED = ("barrier_open", "light_red", "light_green", "loop_arrival", "loop_on_scale",
            "loop_under_boom", "loop_exit", "open_limit", "closed_limit")


@dataclass(frozen=True)
class PinInfo:
    name: str  # canonical: GPIOn
    header: int | None = None
    modes: frozenset[str] = frozenset({"in", "out"})
    pull: str = ""  # a fixed pull resistor on the board: "up" or "down"
    note: str = ""
    owner: str = ""  # "HAT RELAY1" when a HAT drives it


@dataclass(frozen=True)
class PinMap:
    name: str
    title: str = ""
    factories: tuple[str, ...] = ()
    gpiochip: str = ""
    pins: dict[str, PinInfo] = field(default_factory=dict)
    reserved: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # RELAY1 -> GPIO26
    hat: str = ""
    hat_active_high: bool | None = None

    def canonical(self, name: str) -> str | None:
        """GPIO17, BCM17, BOARD11, J8:11 or a HAT channel -> GPIO17; None if unknown."""
        text = name.strip().upper()
        if text in self.aliases:
            return self.aliases[text]
        m = re.fullmatch(r"(?:GPIO|BCM)(\d+)", text)
        if m:
            return f"GPIO{int(m.group(1))}"
        m = re.fullmatch(r"(?:BOARD|J8:)(\d+)", text)
        if m:
            position = int(m.group(1))
            for info in self.pins.values():
                if info.header == position:
                    return info.name
        return None


def find_pinmap(name: str, dirs: tuple[Path, ...] = PINMAP_DIRS) -> Path | None:
    if "/" in name or name.endswith(".toml"):
        path = Path(name)
        return path if path.is_file() else None
    for directory in dirs:
        path = directory / f"{name}.toml"
        if path.is_file():
            return path
    return None


def known_pinmaps(dirs: tuple[Path, ...] = PINMAP_DIRS) -> list[str]:
    return sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.toml")})


def load_pinmap(board: str, hat: str = "", dirs: tuple[Path, ...] = PINMAP_DIRS) -> PinMap:
    """The board's map with the HAT's channels laid over it; ConfigError naming the key."""
    problems: list[str] = []
    data = _read("gate.pinmap", board, dirs, problems)
    hat_data = _read("gate.hat", hat, dirs, problems) if hat else None
    if problems:
        raise ConfigError(problems)
    assert data is not None
    if data.get("kind", "board") != "board":
        raise ConfigError([f"gate.pinmap: {board!r} is a {data.get('kind')} map, not a board"])
    pins = {}
    for name, spec in data.get("pins", {}).items():
        pins[name] = PinInfo(name=name, header=spec.get("header"), modes=frozenset(spec.get("modes", ["in", "out"])),
                             pull=spec.get("pull", ""), note=spec.get("note", ""))
    pinmap = PinMap(name=data.get("name", board), title=data.get("title", ""),
                    factories=tuple(data.get("factories", ())),
                    gpiochip=data.get("gpiochip", ""), pins=pins, reserved=dict(data.get("reserved", {})))
    if hat_data is None:
        return pinmap
    if hat_data.get("kind") != "hat":
        raise ConfigError([f"gate.hat: {hat!r} is not a HAT map (kind = \"hat\" missing)"])
    aliases = {}
    for channel, spec in hat_data.get("channels", {}).items():
        gpio = pinmap.canonical(spec["pin"])
        if gpio is None or gpio not in pins:
            raise ConfigError([f"gate.hat: channel {channel} of {hat!r} uses {spec['pin']!r}, not a pin of {board!r}"])
        aliases[channel.upper()] = gpio
        base = pins[gpio]
        pins[gpio] = PinInfo(name=gpio, header=base.header, modes=frozenset(spec.get("modes", ["out"])) & base.modes,
                             pull=base.pull, note=spec.get("note", base.note), owner=f"HAT {channel}")
    return PinMap(name=pinmap.name, title=pinmap.title, factories=pinmap.factories, gpiochip=pinmap.gpiochip,
                  pins=pins, reserved=pinmap.reserved, aliases=aliases, hat=hat_data.get("name", hat),
                  hat_active_high=hat_data.get("active_high"))


def resolve_pins(config: GateConfig, *, lane: str = "", dirs: tuple[Path, ...] = PINMAP_DIRS) -> dict[str, str]:
    """Every wired role -> its canonical pin name, or one ConfigError listing every problem."""
    prefix = f"lanes[{lane}].gate" if lane else "gate"
    try:
        pinmap = load_pinmap(config.pinmap, config.hat, dirs)
    except ConfigError as err:
        raise ConfigError([p.replace("gate.", f"{prefix}.", 1) for p in err.problems]) from None
    problems = check_pins(config, pinmap, prefix)
    if problems:
        raise ConfigError(problems)
    return {role: pin for role, (key, pin, _) in _wanted(config, pinmap).items() if pin}


def check_pins(config: GateConfig, pinmap: PinMap, prefix: str = "gate") -> list[str]:
    """The problems with a lane's wiring on this board (empty when it can work)."""
    problems: list[str] = []
    if config.pin_factory not in pinmap.factories:
        problems.append(f"{prefix}.pin_factory: {config.pin_factory!r} does not work on {pinmap.name} "
                        f"(use one of {list(pinmap.factories)})")
    if pinmap.hat_active_high is not None and pinmap.hat_active_high != config.active_high:
        level = "active high" if pinmap.hat_active_high else "active low"
        problems.append(f"{prefix}.active_high: the {pinmap.hat} relays are {level}: "
                        f"set active_high = {str(pinmap.hat_active_high).lower()}")
    if config.barrier_mode == "pulse" and not config.barrier_close_pin:
        problems.append(f"{prefix}.barrier_close_pin: required when barrier_mode = \"pulse\"")
    used: dict[str, str] = {}
    for role, (key, pin, raw) in _wanted(config, pinmap).items():
        direction = "out" if role in OUTPUT_KEYS or role.startswith("sign_") else "in"
        if not raw:
            if role in REQUIRED:
                problems.append(f"{prefix}.{key}: required, no pin given")
            continue
        if pin is None:
            problems.append(f"{prefix}.{key}: {raw!r} is not a pin name on {pinmap.name} "
                            "(GPIO17, BCM17, BOARD11, J8:11" + (", or a HAT channel" if pinmap.aliases else "") + ")")
            continue
        if pin in pinmap.reserved:
            problems.append(f"{prefix}.{key}: {pin} is reserved: {pinmap.reserved[pin]}")
            continue
        info = pinmap.pins.get(pin)
        if info is None:
            problems.append(f"{prefix}.{key}: {pin} is not on the {pinmap.name} header")
            continue
        if pin in used:
            problems.append(f"{prefix}.{key}: {pin} is already used by {prefix}.{used[pin]}")
            continue
        used[pin] = key
        if direction not in info.modes:
            what = "an output" if direction == "out" else "an input"
            only = "input" if "in" in info.modes else "output"
            why = f" ({info.owner})" if info.owner else ""
            problems.append(f"{prefix}.{key}: {pin} cannot be {what}: it is {only}-only{why}")
        if direction == "in" and info.pull == "up" and not config.input_pull_up:
            problems.append(f"{prefix}.{key}: {pin} has a fixed pull-up, so inputs on it must be active low "
                            "(input_pull_up = true) or use another pin")
    return problems


def check_site(gates: list[tuple[str, GateConfig]], dirs: tuple[Path, ...] = PINMAP_DIRS) -> list[str]:
    """Every lane's problems, plus pins two lanes claim: one agent drives one board."""
    problems: list[str] = []
    owners: dict[str, str] = {}
    for lane, config in gates:
        try:
            pins = resolve_pins(config, lane=lane, dirs=dirs)
        except ConfigError as err:
            problems.extend(err.problems)
            continue
        for role, pin in pins.items():
            if pin in owners:
                problems.append(f"lanes[{lane}].gate.{_key_of(role)}: {pin} is already used by {owners[pin]}")
            else:
                owners[pin] = f"lanes[{lane}].gate.{_key_of(role)}"
    return problems


def _key_of(role: str) -> str:
    if role.startswith("sign_"):
        return f"sign_pins.{role[5:]}"
    if role.startswith("feedback_"):
        return f"feedback_pins.{role[9:]}"
    return OUTPUT_KEYS.get(role) or INPUT_KEYS[role]


def _wanted(config: GateConfig, pinmap: PinMap) -> dict[str, tuple[str, str | None, str]]:
    """role -> (config key, canonical pin or None, the raw text)."""
    out: dict[str, tuple[str, str | None, str]] = {}
    entries = [(role, key, getattr(config, key)) for role, key in OUTPUT_KEYS.items()]
    if config.barrier_mode == "held" and not config.barrier_close_pin:
        entries = [e for e in entries if e[0] != "barrier_close"]
    entries += [(f"sign_{sign}", f"sign_pins.{sign}", pin) for sign, pin in config.sign_pins.items()]
    entries += [(role, key, getattr(config, key)) for role, key in INPUT_KEYS.items()]
    entries += [(f"feedback_{out_role}", f"feedback_pins.{out_role}", pin)
                for out_role, pin in config.feedback_pins.items()]
    for role, key, raw in entries:
        out[role] = (key, pinmap.canonical(raw) if raw else None, raw)
    return out


def _read(key: str, name: str, dirs: tuple[Path, ...], problems: list[str]) -> dict | None:
    path = find_pinmap(name, dirs)
    if path is None:
        problems.append(f"{key}: unknown board or HAT {name!r} (known: {', '.join(known_pinmaps(dirs)) or 'none'})")
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        problems.append(f"{key}: cannot read pin map {path}: {err}")
        return None
