"""Indicator sets: the schema of risk indicators, their validation and loading.

An indicator set is one JSON document (docs/indicators.md): a version label, an
optional expiry, named selectivity lists and indicators. The RAU publishes a central
set and regional sets; the local risk analyst keeps a local one; the agent merges them
(`IndicatorSet.merge`). Every problem is reported with the indicator (or list) id and
the reason. Unless the set says `"allow_partial": true`, one bad indicator refuses the
whole set, so the caller keeps its previous one.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_agent.errors import IndicatorError
from edge_agent.local_rules.fields import Facts
from edge_agent.local_rules.index import Index
from edge_agent.local_rules.normalize import normalize_code
from edge_agent.local_rules.operators import ConditionError, Node, compile_condition
from edge_agent.local_rules.selectivity import ListSpec, SelectivityList

log = logging.getLogger(__name__)

FORMAT = "bcp-indicators/1"
Level = Literal["central", "regional", "local"]
# Higher levels first: the RAU's central profiles, a regional desk's, the site's own.
LEVEL_RANK = {"central": 0, "regional": 1, "local": 2}
LEVELS = ("central", "regional", "local")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _aware(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("datetime must carry a time zone")
            return value.astimezone(UTC)
        return value


class Scope(_Spec):
    """Where an indicator applies; both empty means every site."""

    sites: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)


class Action(_Spec):
    """What a hit does: one channel, or a share per channel picked by keyed hash."""

    channel: str | None = None
    shares_pct: dict[str, float] | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        if (self.channel is None) == (self.shares_pct is None):
            raise ValueError("action needs exactly one of 'channel' or 'shares_pct'")
        if self.shares_pct is not None:
            if not self.shares_pct or any(v <= 0 for v in self.shares_pct.values()):
                raise ValueError("shares_pct needs positive shares")
            if abs(sum(self.shares_pct.values()) - 100.0) > 1e-6:
                raise ValueError(f"shares_pct must add up to 100, not {sum(self.shares_pct.values())}")
        return self

    def channels(self) -> list[str]:
        return [self.channel] if self.channel is not None else list(self.shares_pct or {})


class IndicatorSpec(_Spec):
    """One indicator as written in a set file."""

    id: str = Field(pattern=_ID)
    version: int = Field(default=1, ge=1)
    level: Level
    title: str = Field(default="", max_length=200)
    status: Literal["active", "inactive", "draft"] = "active"
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    scope: Scope | None = None
    procedures: list[str] = Field(default_factory=list)
    when: dict[str, Any]
    action: Action
    priority: int = 0
    instructions: str = Field(default="", max_length=2000)
    notify: list[str] = Field(default_factory=list)
    owner: str = ""
    author: str = ""


class SetHeader(_Spec):
    format: Literal["bcp-indicators/1"] = "bcp-indicators/1"
    version: str = Field(min_length=1, max_length=80)
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    allow_partial: bool = False
    description: str = ""


_NONE: frozenset = frozenset()


@dataclass(frozen=True, slots=True, eq=False)
class Indicator:
    """A validated, compiled indicator (the condition tree is a `Node`).

    Plain slots and shared empty values, not pydantic models: a central set holds
    100,000 of these on a Raspberry Pi.
    """

    id: str
    version: int
    level: str
    title: str
    status: str
    valid_from: datetime | None
    valid_to: datetime | None
    sites: frozenset[str]
    regions: frozenset[str]
    procedures: frozenset[str]
    node: Node
    channel: str | None  # the action's channel, or None with shares
    shares_pct: dict[str, float] | None  # the action's per-channel shares
    priority: int
    instructions: str
    notify: tuple[str, ...]
    owner: str
    author: str

    def in_force(self, now: datetime) -> bool:
        if self.status != "active":
            return False
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_to is None or now <= self.valid_to

    def applies_to(self, facts: Facts) -> bool:
        """The procedure restriction; an indicator restricted to procedures needs a record."""
        if not self.procedures:
            return True
        return any(p in self.procedures for p in facts.get("procedure", ()))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "version": self.version, "level": self.level, "title": self.title,
            "status": self.status,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "scope": {"sites": sorted(self.sites), "regions": sorted(self.regions)},
            "procedures": sorted(self.procedures), "when": self.node.to_json(),
            "action": {"channel": self.channel} if self.channel is not None else {"shares_pct": self.shares_pct},
            "priority": self.priority, "instructions": self.instructions, "notify": list(self.notify),
            "owner": self.owner, "author": self.author,
        }


@dataclass(eq=False)
class IndicatorSet:
    """Indicators and lists in force together; immutable once built, indexed on first use."""

    version: str = ""
    indicators: tuple[Indicator, ...] = ()
    lists: dict[str, SelectivityList] = field(default_factory=dict)
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    rejected: tuple[tuple[str, str], ...] = ()
    _index: Index | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __len__(self) -> int:
        return len(self.indicators)

    def get(self, indicator_id: str) -> Indicator | None:
        for indicator in self.indicators:
            if indicator.id == indicator_id:
                return indicator
        return None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def index(self) -> Index:
        """The matching index (index.Index), built once; call early to keep it off the lane's path."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = Index(self.indicators)
        return self._index

    def for_site(self, site: str, region: str) -> IndicatorSet:
        """Only the indicators whose scope includes this site or its region."""
        kept = tuple(
            i for i in self.indicators
            if (not i.sites and not i.regions) or site in i.sites or region in i.regions
        )
        return IndicatorSet(self.version, kept, dict(self.lists), self.issued_at, self.expires_at, self.rejected)

    @classmethod
    def merge(cls, *sets: IndicatorSet) -> IndicatorSet:
        """Central + regional + local in one; a list name twice must hold the same entries.

        Levels rank (`LEVEL_RANK`): an id held at a higher level keeps its indicator, and a
        lower level's indicator with that id is left out and named in `rejected` ("shadowed"),
        so a local set can add indicators but never disable, replace or weaken a central or
        regional one, and never make the RAU's set fail to load. Within one level the higher
        version wins, and the same version twice is an error.
        """
        by_id: dict[str, Indicator] = {}
        lists: dict[str, SelectivityList] = {}
        problems: list[tuple[str, str]] = []
        shadowed: list[tuple[str, str]] = []
        for s in sets:
            for name, lst in s.lists.items():
                other = lists.get(name)
                if other is not None and other is not lst and (other.kind, other.entries) != (lst.kind, lst.entries):
                    problems.append((name, "list defined differently in two sets"))
                lists.setdefault(name, lst)
            for ind in s.indicators:
                prev = by_id.get(ind.id)
                if prev is None:
                    by_id[ind.id] = ind
                elif LEVEL_RANK[ind.level] != LEVEL_RANK[prev.level]:
                    high, low = (ind, prev) if LEVEL_RANK[ind.level] < LEVEL_RANK[prev.level] else (prev, ind)
                    by_id[ind.id] = high
                    shadowed.append((low.id, f"{low.level} version {low.version} left out: the id belongs to the "
                                             f"{high.level} indicator (version {high.version})"))
                    log.warning("indicator_shadowed id=%s level=%s kept=%s", low.id, low.level, high.level)
                elif ind.version > prev.version:
                    by_id[ind.id] = ind
                elif ind.version == prev.version and prev is not ind:
                    problems.append((ind.id, f"version {ind.version} defined in two sets"))
        if problems:
            raise IndicatorError(problems, "merge")
        expiries = [s.expires_at for s in sets if s.expires_at is not None]
        issued = [s.issued_at for s in sets if s.issued_at is not None]
        return cls(
            version="+".join(s.version for s in sets if s.version),
            indicators=tuple(by_id.values()),
            lists=lists,
            issued_at=max(issued) if issued else None,
            expires_at=min(expiries) if expiries else None,
            rejected=tuple(p for s in sets for p in s.rejected) + tuple(shadowed),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "issued_at": self.issued_at.isoformat() if self.issued_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "lists": {name: lst.to_json() for name, lst in self.lists.items()},
            "indicators": [i.to_json() for i in self.indicators],
        }


def load_indicator_set(
    source: Path | str | bytes | dict, *, channels: Iterable[str] | None = None
) -> IndicatorSet:
    """Validate and compile one indicator set: a file path, JSON bytes or a parsed dict.

    `channels`, when given (the site's channel codes), also refuses actions naming any
    other channel. `indicators` in a dict may be any iterable, so a generator can stream
    a large set without holding its JSON in memory. Raises IndicatorError.
    """
    label = ""
    if isinstance(source, (str, Path)):
        label = str(source)
        try:
            data = json.loads(Path(source).read_bytes())
        except OSError as err:
            raise IndicatorError([("(file)", f"cannot read: {err.strerror}")], label) from err
        except ValueError as err:
            raise IndicatorError([("(file)", f"not valid JSON: {err}")], label) from err
    elif isinstance(source, bytes):
        try:
            data = json.loads(source)
        except ValueError as err:
            raise IndicatorError([("(file)", f"not valid JSON: {err}")]) from err
    else:
        data = source
    if not isinstance(data, dict):
        raise IndicatorError([("(file)", "an indicator set must be a JSON object")], label)
    return _build(data, label, set(channels) if channels is not None else None)


def load_indicator_sets(sources: Iterable[Path | str], *, channels: Iterable[str] | None = None) -> IndicatorSet:
    """Load several files (central, regional, local) and merge them."""
    chans = list(channels) if channels is not None else None
    return IndicatorSet.merge(*(load_indicator_set(s, channels=chans) for s in sources))


def _build(data: dict, label: str, channels: set[str] | None) -> IndicatorSet:
    raw_lists = data.get("lists", {})
    raw_indicators = data.get("indicators", [])
    header_data = {k: v for k, v in data.items() if k not in ("lists", "indicators")}
    try:
        header = SetHeader.model_validate(header_data)
    except ValidationError as err:
        raise IndicatorError([("(set)", _reason(err))], label) from err

    problems: list[tuple[str, str]] = []
    lists: dict[str, SelectivityList] = {}
    if not isinstance(raw_lists, dict):
        raise IndicatorError([("(set)", "'lists' must be an object of name -> list")], label)
    for name, raw in raw_lists.items():
        if not isinstance(name, str) or not name or len(name) > 64:
            problems.append((str(name), "bad list name"))
            continue
        try:
            spec = ListSpec.model_validate(raw)
        except ValidationError as err:
            problems.append((f"list {name}", _reason(err)))
            continue
        lists[name] = SelectivityList(name, spec.kind, spec.entries, spec.description)

    indicators: dict[str, Indicator] = {}
    if isinstance(raw_indicators, (dict, str, bytes)):
        raise IndicatorError([("(set)", "'indicators' must be an array")], label)
    for position, raw in enumerate(raw_indicators):
        ident = str(raw["id"]) if isinstance(raw, dict) and isinstance(raw.get("id"), str) else f"#{position}"
        try:
            indicator = compile_indicator(raw, lists, channels)
        except (ValidationError, ConditionError) as err:
            problems.append((ident, _reason(err) if isinstance(err, ValidationError) else str(err)))
            continue
        if indicator.id in indicators:
            problems.append((indicator.id, "id used twice in the set"))
            continue
        indicators[indicator.id] = indicator

    if problems:
        if not header.allow_partial:
            log.warning("indicator_set_refused set=%s source=%s problems=%d first=%s",
                        header.version, label or "-", len(problems), "; ".join(problems[0]))
            raise IndicatorError(problems, label)
        for ident, reason in problems:
            log.warning("indicator_rejected set=%s id=%s reason=%s", header.version, ident, reason)
    return IndicatorSet(
        version=header.version,
        indicators=tuple(indicators.values()),
        lists=lists,
        issued_at=header.issued_at,
        expires_at=header.expires_at,
        rejected=tuple(problems),
    )


def compile_indicator(raw: Any, lists: dict[str, SelectivityList], channels: set[str] | None = None) -> Indicator:
    """One indicator from its JSON; raises ValidationError or ConditionError."""
    spec = IndicatorSpec.model_validate(raw)
    node = compile_condition(spec.when, lists)
    if spec.valid_from and spec.valid_to and spec.valid_to < spec.valid_from:
        raise ConditionError("valid_to is before valid_from")
    if channels is not None:
        unknown = [c for c in spec.action.channels() if c not in channels]
        if unknown:
            raise ConditionError(f"unknown channel(s) {unknown}, the site has {sorted(channels)}")
    scope = spec.scope
    return Indicator(
        id=spec.id, version=spec.version, level=spec.level, title=spec.title, status=spec.status,
        valid_from=spec.valid_from, valid_to=spec.valid_to,
        sites=frozenset(scope.sites) or _NONE if scope else _NONE,
        regions=frozenset(scope.regions) or _NONE if scope else _NONE,
        procedures=frozenset(normalize_code(p) for p in spec.procedures) or _NONE, node=node,
        channel=spec.action.channel, shares_pct=spec.action.shares_pct,
        priority=spec.priority, instructions=spec.instructions, notify=tuple(spec.notify),
        owner=spec.owner, author=spec.author,
    )


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def site_indicator_files(indicator_files: Iterable[Path], data_dir: Path) -> list[Path]:
    """The files a site runs with: those named in the configuration, then every set
    imported into `<data_dir>/indicators/` (including the local analyst's local.json)."""
    files = [Path(p) for p in indicator_files]
    folder = Path(data_dir) / "indicators"
    if folder.is_dir():
        files += sorted(p for p in folder.glob("*.json") if p not in files)
    return files
