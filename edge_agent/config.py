"""One model of a site, loaded once from TOML and passed down.

Every table forbids unknown keys, so a typo is an error and not a silently ignored
setting. `load_config` collects every problem at once and names each by its key path
and its line in the file (see `toml_lines`), because a technician on a ladder wants the
whole list, not one error per restart.

`firmware_config/site.example.toml` documents every key.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, field_validator, model_validator

from edge_agent.errors import ConfigError

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(Section):
    id: Identifier
    region: Identifier
    name: str = ""
    timezone: str = "UTC"
    data_dir: Path = Path("/var/lib/edge-agent")
    # Where most plates at this crossing come from, as plate-grammar codes ("SRB", "NMK"):
    # local recognition ranks their formats first and writes plates in their spelling.
    # Checked against the grammar table by site.load_site.
    plate_countries: tuple[str, ...] = ()


class ScaleConfig(Section):
    """The lane's weighbridge indicator."""

    url: str = Field(description="/dev/ttyUSB0, /dev/serial/by-id/..., socket://host:port")
    protocol: str = "toledo"  # a name in devices/scale/protocols.py, checked by site.load_site
    baudrate: int = Field(default=9600, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    poll_interval_s: float = Field(default=0.2, gt=0)
    division_kg: float = Field(default=20.0, gt=0)
    min_weight_kg: float = Field(default=1000.0, ge=0)
    zero_band_kg: float = Field(default=100.0, ge=0)
    stable_readings: int = Field(default=5, ge=2)
    stable_window_s: float = Field(default=1.5, gt=0)
    silence_timeout_s: float = Field(default=3.0, gt=0)  # no byte for this long: the line is dead, reopen
    reconnect_max_s: float = Field(default=5.0, gt=0)  # ceiling of the reopen backoff


class CameraConfig(Section):
    """A plate camera (anpr) or an evidence camera (cctv) of the lane."""

    id: Identifier
    kind: Literal["anpr", "cctv"] = "anpr"
    role: Literal["tractor", "trailer", "scene"] = "tractor"
    recognition: Literal["camera", "local"] = "camera"
    # Who made it (a name in devices/anpr/vendors.py, checked by site.load_site) and how
    # its reads reach the agent: it pushes them to the lane's listener, or the agent pulls.
    vendor: str = "generic"
    mode: Literal["push", "pull"] = "push"
    url: str = ""  # stream or poll address; empty for cameras that push
    username: str = ""  # pull: the agent logs in to the camera; push: the camera logs in to the agent
    password: str = Field(default="", repr=False)
    # ANPR push: all ANPR cameras of a lane POST to one listener, http://HOST:PORT/anpr/<id>
    push_auth: Literal["none", "basic", "digest"] = "none"  # what the listener demands of this camera
    listen_host: str = ""  # the lane listener's bind address ("" = 127.0.0.1; 0.0.0.0 for real cameras)
    listen_port: int = Field(default=0, ge=0, lt=65536)  # 0 = any free port
    # ANPR pull (mode = "pull"): the vendor's event stream, or JPEG snapshots read locally
    pull_mode: str = "alert_stream"  # one of the vendor's streams, or "snapshot" (any camera)
    poll_interval_s: float = Field(default=1.0, gt=0)
    min_confidence: float = Field(default=0.0, ge=0, le=1)  # reads below this are dropped, counted
    # CCTV (kind = "cctv"): a ring of the last ring_seconds at ring_fps, downscaled, JPEG-encoded
    ring_seconds: float = Field(default=20.0, gt=0, le=300)
    ring_fps: float = Field(default=5.0, gt=0, le=30)
    ring_width_px: int = Field(default=640, ge=0)  # 0 = keep the stream's width
    ring_jpeg_quality: int = Field(default=70, ge=10, le=100)
    ring_max_bytes: int = Field(default=8_000_000, ge=100_000)  # hard cap whatever the scene compresses to
    snapshot_jpeg_quality: int = Field(default=90, ge=10, le=100)
    clip_before_s: float = Field(default=5.0, ge=0)  # clips for hits; capped at ring_seconds
    clip_after_s: float = Field(default=5.0, ge=0)
    stream_timeout_s: float = Field(default=5.0, gt=0)  # open/read; then the stream counts as lost
    reconnect_max_s: float = Field(default=10.0, gt=0)  # backoff ceiling


class GateConfig(Section):
    """The lane's barrier, lights, sign, alarm and loop detectors, through gpiozero.

    A pin is a name the board's pin map knows (GPIO17, BCM17, BOARD11, J8:11) or a
    channel of the relay HAT (RELAY1); an empty string means "not wired". The pin map
    (`firmware_config/pinmaps/`) is checked at start: see edge_agent/devices/gate/pinmap.py
    and docs/wiring.md.
    """

    # The board's GPIO library; "mock" drives nothing and must be asked for by name (a dry
    # run, a demo), so a site file that forgets the key never runs a real lane on mock pins.
    pin_factory: Literal["native", "lgpio", "rpigpio", "mock"] = "lgpio"
    pinmap: str = "rpi4"  # board: rpi4, rpi5, or a path to a pin map TOML
    hat: str = ""  # relay HAT stacked on the board, e.g. waveshare-rpi-relay
    # outputs (relays)
    barrier_open_pin: str = "GPIO17"
    barrier_close_pin: str = "GPIO27"  # unused (may be empty) when barrier_mode = "held"
    light_red_pin: str = "GPIO22"
    light_green_pin: str = "GPIO23"
    sign_pins: dict[Literal["exit", "documents", "inspection", "scanner", "back"], str] = Field(default_factory=dict)
    beacon_pin: str = ""
    buzzer_pin: str = ""
    permission_pin: str = ""  # toggled while the open permission holds: feeds a watchdog relay
    active_high: bool = True  # False for active-low relay boards
    red_lamp_contact: Literal["no", "nc"] = "no"  # "nc": red lamp lit while its relay is de-energised
    barrier_mode: Literal["pulse", "held"] = "pulse"
    pulse_s: float = Field(default=0.5, gt=0)
    # inputs
    loop_arrival_pin: str = "GPIO5"
    loop_on_scale_pin: str = "GPIO6"
    loop_under_boom_pin: str = "GPIO13"
    loop_exit_pin: str = "GPIO19"
    open_limit_pin: str = "GPIO24"
    closed_limit_pin: str = "GPIO25"
    override_key_pin: str = ""
    feedback_pins: dict[
        Literal["barrier_open", "barrier_close", "light_red", "light_green", "permission"], str
    ] = Field(default_factory=dict)  # output -> input reading that relay's monitoring contact
    input_pull_up: bool = False  # True: contacts switch the input to ground (active low)
    debounce_s: float = Field(default=0.03, ge=0)
    # supervision
    open_permission_s: float = Field(default=30.0, gt=0)
    limit_leave_s: float = Field(default=1.0, gt=0)  # the barrier must leave its end position this fast
    travel_s: float = Field(default=8.0, gt=0)  # and reach the other one within this
    feedback_s: float = Field(default=0.3, gt=0)
    alarm_beacon_s: float = Field(default=30.0, gt=0)
    alarm_buzzer_s: float = Field(default=3.0, gt=0)


class TimeoutsConfig(Section):
    """How long a lane waits before saying so; every wait ends in an explicit state."""

    plate_s: float = Field(default=60.0, gt=0)
    weight_s: float = Field(default=120.0, gt=0)
    trailer_s: float = Field(default=10.0, ge=0)
    officer_s: float = Field(default=900.0, gt=0)
    exit_s: float = Field(default=120.0, gt=0)


class LaneConfig(Section):
    id: Identifier
    name: str = ""
    scale: ScaleConfig | None = None
    cameras: list[CameraConfig] = Field(default_factory=list)
    gate: GateConfig = GateConfig()
    timeouts: TimeoutsConfig = TimeoutsConfig()

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        seen: set[str] = set()
        for cam in cameras:
            if cam.id in seen:
                raise ValueError(f"camera id {cam.id!r} used twice")
            seen.add(cam.id)
        return cameras


class ChannelConfig(Section):
    """One channel of the code list. Precedence: lower number wins."""

    code: Identifier
    label: str
    precedence: int
    gate: Literal["release", "documents", "inspection", "scanner"]


DEFAULT_CHANNELS = [
    ChannelConfig(code="red", label="Physical inspection", precedence=1, gate="inspection"),
    ChannelConfig(code="orange", label="Scanner", precedence=2, gate="scanner"),
    ChannelConfig(code="yellow", label="Documents check", precedence=3, gate="documents"),
    ChannelConfig(code="blue", label="Release, post-clearance audit", precedence=4, gate="release"),
    ChannelConfig(code="green", label="Release", precedence=5, gate="release"),
]


class PolicyConfig(Section):
    """How hits become a channel."""

    channels: list[ChannelConfig] = Field(default_factory=lambda: list(DEFAULT_CHANNELS))
    default_channel: Identifier = "green"
    no_prearrival_channel: Identifier = "yellow"
    random_channel: Identifier = "yellow"
    random_share_pct: float = Field(default=5.0, ge=0, le=100)
    # The key of the random selection's hash: without a secret of the site's own, anyone
    # who reads the code can tell which declarations are drawn. site.load_site refuses a
    # missing, short or published one; `edge-agent install` writes a fresh one.
    random_secret: str = Field(default="", repr=False)
    random_secret_version: int = Field(default=1, ge=1)  # raise it with each new secret
    # Earlier secrets by version: a past draw can be re-run (`assess --replay`) after a rotation.
    retired_random_secrets: dict[int, str] = Field(default_factory=dict, repr=False)
    stale_channel: Identifier = "yellow"
    seizure_criminal_threshold_eur: float = Field(default=5000.0, ge=0)
    # A truck declared empty that weighs more than this is "declared empty but loaded".
    empty_truck_max_kg: float = Field(default=20000.0, gt=0)
    # The share of crossings the office expects per channel (stats compare actual to it).
    expected_share_pct: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _codes_known(self) -> PolicyConfig:
        codes = [c.code for c in self.channels]
        if len(set(codes)) != len(codes):
            raise ValueError("channel codes must be unique")
        for key in ("default_channel", "no_prearrival_channel", "random_channel", "stale_channel"):
            if getattr(self, key) not in codes:
                raise ValueError(f"{key} {getattr(self, key)!r} is not one of the channels {codes}")
        unknown = sorted(set(self.expected_share_pct) - set(codes))
        if unknown:
            raise ValueError(f"expected_share_pct names unknown channels {unknown}")
        return self

    def secret_of_version(self, version: int) -> str | None:
        """The random-selection secret that was in force as `version`, None if not kept."""
        if version == self.random_secret_version:
            return self.random_secret
        return self.retired_random_secrets.get(version)

    def channel(self, code: str) -> ChannelConfig:
        for c in self.channels:
            if c.code == code:
                return c
        raise KeyError(code)


class RulesConfig(Section):
    indicator_files: list[Path] = Field(default_factory=list)


class SyncConfig(Section):
    """The link to the RAU over MQTT (docs/sync.md)."""

    enabled: bool = False
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(default=1883, gt=0, lt=65536)
    client_id: str = ""  # empty: the site id (the shipped broker uses the certificate's CN anyway)
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    tls_ca: Path | None = None
    tls_cert: Path | None = None  # the site's client certificate; its CN must be the site id
    tls_key: Path | None = None
    # A link that went silent (half-open: the far end gone without a word) is given up
    # within twice this (MQTT keepalive), or sooner when data sent is not acknowledged.
    keepalive_s: int = Field(default=10, gt=0)
    # Reconnect waits: full jitter from 0 up to base doubled per attempt, capped.
    reconnect_base_s: float = Field(default=1.0, gt=0)
    reconnect_cap_s: float = Field(default=60.0, gt=0)
    # outbox: delivery. The backlog is paced by the hub's acknowledgements: at most
    # max_inflight events unacknowledged; drain_rate_per_s caps it further (0 = no cap).
    drain_rate_per_s: float = Field(default=0.0, ge=0)
    max_inflight: int = Field(default=500, gt=0)  # unacknowledged window; keep under the broker's max_queued_messages
    resend_timeout_s: float = Field(default=30.0, gt=0)
    poll_interval_s: float = Field(default=0.05, gt=0)  # how often new outbox rows are looked for
    # outbox: size budget (class "other" evicted oldest first; customs rows never dropped)
    outbox_budget_mb: float = Field(default=200.0, gt=0)
    customs_alarm_pct: float = Field(default=90.0, gt=0, le=100)
    # status and downlink
    health_interval_s: float = Field(default=60.0, gt=0)
    prearrival_ttl_h: float = Field(default=72.0, gt=0)  # expiry when a record names none
    office_codes: list[str] = Field(default_factory=list)  # customs office codes of this site; empty: any
    # signed indicator bundles
    trust_dir: Path | None = None  # empty: <data_dir>/trust
    max_bundle_mb: float = Field(default=8.0, gt=0)
    # evidence on demand: files go up only after live traffic, within this budget
    evidence_rate_bytes_per_s: int = Field(default=32768, gt=0)  # 256 kbit/s: a modest share of a site's link
    evidence_chunk_kib: int = Field(default=64, ge=1, le=1024)


class ConsoleConfig(Section):
    """The officers' lane console (edge_agent/console/): a local web application."""

    enabled: bool = False
    host: str = "127.0.0.1"  # booth screens on the LAN need the site's address here
    port: int = Field(default=8080, ge=0, lt=65536)  # 0 = any free port (tests)
    # The console's own SQLite file: users, sessions and the hash-chained audit log.
    # Default <data_dir>/console.db. It is not the customs database, which only the core writes.
    db_file: Path | None = None
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0)  # one shift
    # The session cookie is Secure whenever the console is reached over TLS (its own, or a
    # trusted proxy's X-Forwarded-Proto); True sets it always (a TLS proxy not listed below).
    secure_cookies: bool = False
    # Serve HTTPS itself with this certificate and key (PEM); both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Reverse proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto
    # are believed; none by default: the TCP peer is the client.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # The booth terminals (addresses or networks): a username being guessed from elsewhere
    # still logs in from these, as from any address the user logged in from recently.
    booth_addresses: list[IPvAnyNetwork] = Field(default_factory=list)
    login_remember_address_days: float = Field(default=30.0, gt=0)
    live_interval_s: float = Field(default=1.0, gt=0)  # how often the lane page's live stream sends
    evidence_dir: Path | None = None  # CCTV snapshots; default <data_dir>/evidence
    # Password guessing: after these many wrong passwords for one username (or from one
    # client address) logins pause, doubling with each further failure up to the cap.
    login_free_failures: int = Field(default=5, ge=1)
    login_free_failures_per_client: int = Field(default=20, ge=1)
    login_pause_s: float = Field(default=30.0, gt=0)
    login_max_pause_s: float = Field(default=900.0, gt=0)
    # How often the audit log's newest hash is anchored in the customs database and sent
    # to the RAU: entries newer than the last anchor could be cut without a trace.
    audit_anchor_interval_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _tls_pair(self) -> ConsoleConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        return self


class MetricsConfig(Section):
    """The site's figures for a monitoring system (Prometheus text), on their own port."""

    enabled: bool = True
    host: str = "127.0.0.1"  # loopback: another address needs a token (site.load_site)
    port: int = Field(default=9108, ge=0, lt=65536)  # 0 = any free port (tests)
    token: str = Field(default="", repr=False)  # required as "Authorization: Bearer <token>" when set


class StorageConfig(Section):
    """The site's storage over a year unattended (docs/storage.md)."""

    # Given back when the disk fills, so the core can finish what it started; 0 = none.
    reserve_mb: float = Field(default=64.0, ge=0)
    # Events kept in memory, in order, while the storage takes no commits.
    journal_max_events: int = Field(default=50_000, ge=100)


class RetentionConfig(Section):
    """How long each class of data is kept, and the disk budget of evidence media
    (docs/storage.md, "Retention"). Periods are days from the crossing's end, or from the
    release of its hold when that is later; a crossing on hold is kept whole."""

    media_days: int = Field(default=30, ge=1)  # pictures and clips of crossings with no hit, control or re-channel
    raw_days: int = Field(default=30, ge=1)  # raw device payloads (scale frames, ANPR payloads) of those
    records_days: int = Field(default=90, ge=1)  # their database records (crossing, assessment, events)
    flagged_days: int = Field(default=1825, ge=1)  # everything of flagged crossings, once the hold is released
    purge_interval_s: float = Field(default=600.0, gt=0)  # how often the worker and the records step run
    purge_batch_files: int = Field(default=100, ge=1)  # files deleted between two pauses
    purge_pause_s: float = Field(default=0.5, ge=0)
    purge_batch_rows: int = Field(default=200, ge=1, le=10_000)  # database rows per core tick at most
    evidence_max_mb: float = Field(default=0.0, ge=0)  # the media cap; 0 = evidence_max_pct of the file system
    evidence_max_pct: float = Field(default=50.0, gt=0, le=100)
    high_water_pct: float = Field(default=90.0, gt=0, lt=100)  # of the cap: past it the oldest media go early

    @model_validator(mode="after")
    def _records_outlive_files(self) -> RetentionConfig:
        # A crossing's rows say what its files are: they must not go before the files.
        if self.records_days < max(self.media_days, self.raw_days):
            raise ValueError("records_days must be at least media_days and raw_days (the records say what the "
                             "files are)")
        return self


class AgentConfig(Section):
    """A whole site: what `edge-agent run --config FILE` runs."""

    site: SiteConfig
    lanes: list[LaneConfig] = Field(min_length=1)
    policy: PolicyConfig = PolicyConfig()
    rules: RulesConfig = RulesConfig()
    sync: SyncConfig = SyncConfig()
    console: ConsoleConfig = ConsoleConfig()
    metrics: MetricsConfig = MetricsConfig()
    storage: StorageConfig = StorageConfig()
    retention: RetentionConfig = RetentionConfig()

    @field_validator("lanes")
    @classmethod
    def _unique_lanes(cls, lanes: list[LaneConfig]) -> list[LaneConfig]:
        ids = [lane.id for lane in lanes]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"lane ids used twice: {sorted(dup)}")
        return lanes

    def lane(self, lane_id: str) -> LaneConfig:
        for lane in self.lanes:
            if lane.id == lane_id:
                return lane
        raise KeyError(lane_id)


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate a site file against the schema, or raise ConfigError listing
    every problem (site.load_site also checks it against the device tables)."""
    return parse_config(read_site_file(path), str(path))


def read_site_file(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"cannot read: {err.strerror}"], str(path)) from err


def parse_config(text: str, source: str = "<config>") -> AgentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"not valid TOML: {err}"], source) from err
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as err:
        lines = toml_lines(text)
        problems = [describe_error(e, lines) for e in err.errors()]
        raise ConfigError(problems, source) from err


def describe_error(error: dict, lines: dict[tuple, int]) -> str:
    loc = tuple(error["loc"])
    key = key_path(loc)
    line = locate(loc, lines)
    where = f"line {line}: " if line else ""
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        msg = "unknown key"
    elif error["type"] == "missing":
        msg = "required key is missing"
    return f"{where}{key or '(top level)'}: {msg}"


def key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def locate(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """The line of the deepest key or table in `loc` that the file spells out."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\"'-]+)\s*=")


def toml_lines(text: str) -> dict[tuple, int]:
    """Map key paths (with array-of-table indices) to their 1-based line numbers.

    tomllib gives values but no positions; this small scan recovers them for the
    error messages. It only needs to be right for keys and table headers, not values.
    """
    lines: dict[tuple, int] = {}
    counts: dict[tuple, int] = {}
    current: tuple = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                resolved = _resolve(names[:-1], counts) + names[-1:]
                index = counts.get(resolved, -1) + 1
                counts[resolved] = index
                resolved = resolved + (index,)
            else:
                resolved = _resolve(names, counts)
            current = resolved
            lines.setdefault(current, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault(current + tuple(_split_key(key.group(1))), number)
    return lines


def _split_key(raw: str) -> list[str]:
    return [part.strip().strip("\"'") for part in raw.split(".")]


def _resolve(names: tuple, counts: dict[tuple, int]) -> tuple:
    # A table header inside an array of tables belongs to that array's last element.
    resolved: tuple = ()
    for name in names:
        resolved = resolved + (name,)
        if resolved in counts:
            resolved = resolved + (counts[resolved],)
    return resolved
