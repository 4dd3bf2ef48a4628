"""The field catalogue: every value an indicator may test, and how to read it.

Two kinds of facts: the pre-arrival record (what the sending customs declared) and
what the crossing itself observed (measured mass, the plate actually read, the hour).
`extract` turns one record and one set of observations into `Facts`: a mapping from
field name to a tuple of normalised values. Item fields (`items.hs_code`) carry one
value per item; a condition on them holds when any item satisfies it. A missing value
is an empty tuple, so only `exists` (and `not`) can be true of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from edge_agent.local_rules.normalize import (
    normalize_code,
    normalize_hs,
    normalize_name,
    normalize_plate,
    normalize_text,
)
from edge_agent.models import Observations, Party, PreArrival

Facts = dict[str, tuple]

# Value kinds: how values of a field are normalised and which operators apply.
STRING_KINDS = ("name", "plate", "hs", "code", "text")
NORMALIZERS: dict[str, Callable[[str], str]] = {
    "name": normalize_name,
    "plate": normalize_plate,
    "hs": normalize_hs,
    "code": normalize_code,
    "text": normalize_text,
}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str  # name | plate | hs | code | text | number | bool
    description: str
    source: str  # prearrival | observed
    # Few distinct values (booleans, procedures, countries): a poor index key.
    coarse: bool = False


def _f(name: str, kind: str, description: str, source: str = "prearrival", coarse: bool = False) -> Field:
    return Field(name, kind, description, source, coarse)


_PARTY_FIELDS = []
for _role in ("consignor", "consignee", "declarant"):
    _PARTY_FIELDS += [
        _f(f"{_role}.name", "name", f"{_role} name"),
        _f(f"{_role}.country", "code", f"{_role} country, ISO 3166 alpha-2", coarse=True),
        _f(f"{_role}.id", "code", f"{_role} tax or EORI-like number"),
    ]

FIELDS: dict[str, Field] = {
    f.name: f
    for f in [
        _f("reference", "code", "declaration reference"),
        _f("procedure", "code", "export, transit, TIR, ATA, simplified, empty", coarse=True),
        _f("tractor_plate", "plate", "declared tractor registration"),
        _f("trailer_plate", "plate", "declared trailer registration"),
        _f("plates", "plate", "either declared registration (tractor or trailer)"),
        _f("gross_kg", "number", "declared gross mass, kg"),
        _f("declared_empty", "bool", "declared as an empty truck", coarse=True),
        *_PARTY_FIELDS,
        _f("parties.name", "name", "any party's name (consignor, consignee, declarant)"),
        _f("items.hs_code", "hs", "HS code of any item"),
        _f("items.origin", "code", "country of origin of any item", coarse=True),
        _f("items.description", "text", "goods description of any item"),
        _f("items.count", "number", "number of items"),
        _f("country_of_dispatch", "code", "country of dispatch", coarse=True),
        _f("office_of_exit", "code", "customs office of exit"),
        _f("office_of_entry", "code", "customs office of entry"),
        _f("packages", "number", "number of packages"),
        _f("value_eur", "number", "declared value, EUR"),
        # observed at the crossing
        _f("no_prearrival", "bool", "no pre-arrival record for the plate read", "observed", coarse=True),
        _f("measured_kg", "number", "mass measured by the weighbridge, kg", "observed"),
        _f("deviation_kg", "number", "measured minus declared gross mass, kg (signed)", "observed"),
        _f("deviation_pct", "number", "deviation as % of the declared gross mass (signed)", "observed"),
        _f("deviation_abs_kg", "number", "size of the deviation, kg", "observed"),
        _f("deviation_abs_pct", "number", "size of the deviation, %", "observed"),
        _f("declared_empty_loaded", "bool", "declared empty but measured above policy.empty_truck_max_kg",
           "observed", coarse=True),
        _f("plate_read", "plate", "tractor plate read at the lane", "observed"),
        _f("trailer_read", "plate", "trailer plate read at the lane", "observed"),
        _f("plate_confidence", "number", "confidence of the plate read, 0..1", "observed"),
        _f("plate_match", "code", "how the record was found: EXACT, FUZZY, MANUAL, NONE", "observed", coarse=True),
        _f("plate_distance", "number", "edit distance between the plate read and the record", "observed"),
        _f("local_hour", "number", "hour of day at the site, 0..23", "observed"),
        _f("weekday", "code", "day of week at the site: MON..SUN", "observed", coarse=True),
    ]
}

_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def extract(
    record: PreArrival | None,
    seen: Observations,
    *,
    now: datetime,
    site_tz: str = "UTC",
    empty_truck_max_kg: float = 20000.0,
) -> Facts:
    """All fields of one truck as normalised value tuples (see module docstring)."""
    facts: Facts = {}
    if record is not None:
        _record_facts(record, facts)
    local = now.astimezone(_zone(site_tz))
    facts["no_prearrival"] = (record is None,)
    facts["local_hour"] = (float(local.hour),)
    facts["weekday"] = (_WEEKDAYS[local.weekday()],)
    if seen.tractor_plate:
        facts["plate_read"] = (normalize_plate(seen.tractor_plate),)
    if seen.trailer_plate:
        facts["trailer_read"] = (normalize_plate(seen.trailer_plate),)
    facts["plate_confidence"] = (float(seen.plate_confidence),)
    facts["plate_match"] = (normalize_code(seen.plate_match),)
    facts["plate_distance"] = (float(seen.plate_distance),)
    if seen.measured_kg is not None:
        facts["measured_kg"] = (float(seen.measured_kg),)
        if record is not None:
            dev_kg, dev_pct = deviation(record.gross_kg, seen.measured_kg)
            facts["deviation_kg"] = (dev_kg,)
            facts["deviation_abs_kg"] = (abs(dev_kg),)
            if dev_pct is not None:
                facts["deviation_pct"] = (dev_pct,)
                facts["deviation_abs_pct"] = (abs(dev_pct),)
            facts["declared_empty_loaded"] = (record.declared_empty and seen.measured_kg > empty_truck_max_kg,)
    return facts


def deviation(declared_kg: float, measured_kg: float) -> tuple[float, float | None]:
    """Measured minus declared, in kg and in % of declared (None when nothing was declared)."""
    dev_kg = float(measured_kg) - float(declared_kg)
    dev_pct = dev_kg / declared_kg * 100.0 if declared_kg > 0 else None
    return dev_kg, dev_pct


def _record_facts(r: PreArrival, facts: Facts) -> None:
    facts["reference"] = (normalize_code(r.reference),)
    facts["procedure"] = (normalize_code(r.procedure),)
    plates = []
    if r.tractor_plate:
        facts["tractor_plate"] = (normalize_plate(r.tractor_plate),)
        plates.append(facts["tractor_plate"][0])
    if r.trailer_plate:
        facts["trailer_plate"] = (normalize_plate(r.trailer_plate),)
        plates.append(facts["trailer_plate"][0])
    facts["plates"] = tuple(plates)
    facts["gross_kg"] = (float(r.gross_kg),)
    facts["declared_empty"] = (r.declared_empty,)
    names = []
    for role in ("consignor", "consignee", "declarant"):
        party: Party | None = getattr(r, role)
        if party is None:
            continue
        name = normalize_name(party.name)
        facts[f"{role}.name"] = (name,)
        names.append(name)
        if party.country:
            facts[f"{role}.country"] = (normalize_code(party.country),)
        if party.id:
            facts[f"{role}.id"] = (normalize_code(party.id),)
    facts["parties.name"] = tuple(dict.fromkeys(names))
    facts["items.hs_code"] = tuple(dict.fromkeys(normalize_hs(i.hs_code) for i in r.items))
    facts["items.origin"] = tuple(dict.fromkeys(normalize_code(i.origin) for i in r.items if i.origin))
    facts["items.description"] = tuple(
        dict.fromkeys(normalize_text(i.description) for i in r.items if i.description)
    )
    facts["items.count"] = (float(len(r.items)),)
    for key in ("country_of_dispatch", "office_of_exit", "office_of_entry"):
        value = getattr(r, key)
        if value:
            facts[key] = (normalize_code(value),)
    facts["packages"] = (float(r.packages),)
    facts["value_eur"] = (float(r.value_eur),)


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone
