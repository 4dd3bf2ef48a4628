"""The hub's configuration file (`edge-agent central serve --config central.toml`): where
its ledger is, the office map, who gets alerts and how, and the channel mix the RAU's
console holds the sites to. Documented key by key in
docs/central.md ("Configuration"); every section refuses keys it does not know.

    config = load_hub_config(Path("central.toml"))
    config.alerts.targets["rau-duty"].email   # ["duty@rau.example"]
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge_agent.config import DEFAULT_CHANNELS
from edge_agent.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmtpConfig(_Section):
    """The relay every alert e-mail goes through, always upgraded with STARTTLS (RFC 3207)."""

    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    sender: str = Field(min_length=3)  # the From: address
    username: str = ""
    password_file: Path | None = None  # the relay's password, in a file only the hub reads
    ca_file: Path | None = None  # the CA that signed the relay's certificate; empty: the system's
    timeout_s: float = Field(default=15.0, gt=0)


class SmsConfig(_Section):
    """An HTTP SMS gateway: one POST per message, its body built from `fields`, where
    `{to}` and `{text}` stand for the number and the message (each operator's API differs)."""

    url: str = Field(pattern=r"^https?://")
    format: Literal["json", "form"] = "json"
    fields: dict[str, str] = Field(default_factory=lambda: {"to": "{to}", "text": "{text}"})
    headers: dict[str, str] = Field(default_factory=dict)
    ca_file: Path | None = None
    timeout_s: float = Field(default=15.0, gt=0)
    max_chars: int = Field(default=480, ge=70)


class TargetConfig(_Section):
    """What a name in an indicator's `notify` list reaches."""

    email: list[str] = Field(default_factory=list)
    sms: list[str] = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value

    @field_validator("sms")
    @classmethod
    def _numbers(cls, value: list[str]) -> list[str]:
        for number in value:
            if not number.lstrip("+").isdigit() or not 5 <= len(number) <= 20:
                raise ValueError(f"{number!r} is not a phone number (digits, an optional leading +)")
        return value


class RetryConfig(_Section):
    """Backoff with full jitter: attempt n waits a random time in [0, min(cap, base * 2**(n-1))]."""

    attempts: int = Field(default=6, ge=1)
    base_s: float = Field(default=2.0, gt=0)
    cap_s: float = Field(default=300.0, gt=0)


class RateLimitConfig(_Section):
    """At most `per_recipient` alerts to one address or number within `window_s`; the rest
    are suppressed (logged, counted, listed by `central alerts --failed`), not queued."""

    per_recipient: int = Field(default=20, ge=1)
    window_s: float = Field(default=3600.0, gt=0)


class AlertsConfig(_Section):
    smtp: SmtpConfig | None = None
    sms: SmsConfig | None = None
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    poll_s: float = Field(default=0.5, gt=0)  # how often the dispatcher looks for due deliveries

    @property
    def enabled(self) -> bool:
        return bool(self.targets)


# The administration's channel mix (the seed's figures): the share of crossings it expects
# per channel, and of the green ones the share drawn at random for a documents check.
CHANNEL_TARGETS_PCT = {"green": 11.0, "yellow": 67.0, "red": 16.0, "blue": 2.0, "orange": 4.0}
RANDOM_TARGET_PCT = 5.0


class ConsoleConfig(_Section):
    """What the RAU's console compares the sites against (`[console]`)."""

    channel_targets_pct: dict[str, float] = Field(default_factory=lambda: dict(CHANNEL_TARGETS_PCT))
    random_target_pct: float = Field(default=RANDOM_TARGET_PCT, ge=0, le=100)

    @field_validator("channel_targets_pct")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        codes = {c.code for c in DEFAULT_CHANNELS}
        unknown = sorted(set(value) - codes)
        if unknown:
            raise ValueError(f"unknown channels {unknown}: the channels are {sorted(codes)}")
        if any(not 0 <= share <= 100 for share in value.values()):
            raise ValueError("each share is a percentage from 0 to 100")
        if sum(value.values()) > 100.0001:
            raise ValueError(f"the shares add up to {sum(value.values()):g} %, more than 100 %")
        return value


class HubConfig(_Section):
    db: str = ""  # a path, sqlite:///PATH or postgresql://...; --db wins
    offices: dict[str, str] = Field(default_factory=dict)  # customs office code -> site id
    # The sites whose events the hub stores; empty: any name the broker let through. The
    # broker's ACL lets an identity write only under its own name, so this refuses the
    # names the RAU never registered (a stray certificate, a test rig on the wrong broker).
    sites: list[str] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)


def load_hub_config(path: Path) -> HubConfig:
    """The file's configuration; a `ConfigError` naming each bad key."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError([str(err)], str(path)) from err
    try:
        return HubConfig.model_validate(raw)
    except ValidationError as err:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ConfigError(problems, str(path)) from err
