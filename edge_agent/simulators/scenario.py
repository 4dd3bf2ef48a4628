"""A reproducible day at a crossing: trucks, their pre-arrival records, what the lane
devices will report, and what the agent is expected to decide.

The expected outcome of each truck comes from how it was planted (declared 24 t,
weighs 31 t: the weight indicator must hit), not from running the rules, so the demo
and its end-to-end test check the agent against an independent account.
Random selection of green trucks is keyed on a secret, so the oracle only knows that a
clean truck is green or randomly selected with no hit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from edge_agent.models import Item, Party, PreArrival

PLANTS = ("overweight", "watch_consignee", "no_record", "ocr_errors", "tobacco", "empty_loaded")

# Indicator ids of firmware_config/indicators/demo.json that each plant must trigger.
EXPECTED_HITS = {
    "normal": frozenset(),
    "ocr_errors": frozenset(),
    "overweight": frozenset({"C-WEIGHT-10"}),
    "watch_consignee": frozenset({"R-CONSIGNEE-WATCH"}),
    "no_record": frozenset({"C-NO-RECORD"}),
    "tobacco": frozenset({"L-TOBACCO-24"}),
    "empty_loaded": frozenset({"C-EMPTY-LOADED", "C-WEIGHT-10"}),
}
EXPECTED_CHANNEL = {
    "overweight": "red",
    "watch_consignee": "orange",
    "no_record": "yellow",
    "tobacco": "red",
    "empty_loaded": "red",
}

COMPANIES = [
    ("Rruga e Kombit SH.P.K.", "XK"), ("Prizren Food LLC", "XK"), ("Tirana Mobilia SH.A.", "AL"),
    ("Novi Sad Agro DOO", "RS"), ("Skopje Pak DOOEL", "MK"), ("Podgorica Trans DOO", "ME"),
    ("Sarajevo Metal d.o.o.", "BA"), ("Vardar Fresh DOOEL", "MK"), ("Peja Beverages SH.P.K.", "XK"),
    ("Durres Port Services SH.P.K.", "AL"),
]
WATCHED = [("DRINI TRADE SHPK", "XK"), ("Balkan Logistik d.o.o.", "RS"), ("Trgovina Ekspres d.o.o.", "MK")]
GOODS = [("847130", "Portable computers"), ("940360", "Wooden furniture"), ("070200", "Tomatoes, fresh"),
         ("220300", "Beer"), ("690721", "Ceramic tiles"), ("392321", "Plastic bags"), ("610910", "T-shirts")]
TOBACCO = ("240220", "Cigarettes containing tobacco")
OFFICES = {"XK": "XK000301", "RS": "RS081000", "AL": "AL010100", "MK": "MK001002", "ME": "ME100001", "BA": "BA070100"}

# Plate formats of the region (shown as printed; the agent normalises them).
_LETTERS = "ABCDEFGHJKLMNPRSTVZ"
_BIH_LETTERS = "AEJKMOT"


def _plate(rng: random.Random, country: str) -> str:
    L = lambda n: "".join(rng.choice(_LETTERS) for _ in range(n))  # noqa: E731
    D = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    if country == "XK":
        return f"0{rng.randint(1, 7)} {D(3)}-{L(2)}"
    if country == "AL":
        return f"{L(2)} {D(3)} {L(2)}"
    if country == "RS":
        return f"{rng.choice(['BG', 'NS', 'NI', 'KG'])} {D(rng.choice([3, 4]))}-{L(2)}"
    if country == "MK":
        return f"{rng.choice(['SK', 'BT', 'KU', 'TE'])} {D(4)} {L(2)}"
    if country == "ME":
        return f"{rng.choice(['PG', 'NK', 'BR'])} {L(2)} {D(3)}"
    return f"{rng.choice(_BIH_LETTERS)}{D(2)}-{rng.choice(_BIH_LETTERS)}-{D(3)}"


# What an OCR engine typically confuses; the association must see through it.
_CONFUSE = {"0": "O", "O": "0", "1": "I", "I": "1", "8": "B", "B": "8", "5": "S", "S": "5",
            "2": "Z", "Z": "2", "6": "G", "G": "6", "4": "A", "A": "4", "D": "0"}


def misread(plate: str, rng: random.Random, errors: int = 1) -> str:
    """The plate with `errors` confusable characters swapped, as a camera might read it."""
    chars = list(plate)
    positions = [i for i, ch in enumerate(chars) if ch in _CONFUSE]
    for i in rng.sample(positions, min(errors, len(positions))):
        chars[i] = _CONFUSE[chars[i]]
    return "".join(chars)


@dataclass(frozen=True)
class TruckPlan:
    number: int
    lane: str
    plant: str
    tractor_plate: str  # as printed on the truck
    trailer_plate: str
    tractor_read: str  # what the lane camera will report
    trailer_read: str
    measured_kg: float
    record: PreArrival | None
    expected_hits: frozenset[str] = field(default_factory=frozenset)
    expected_channel: str | None = None  # None: green, or random selection with no hit

    @property
    def held(self) -> bool:
        return self.expected_channel is not None


def build_scenario(trucks: int = 20, seed: int = 7, lanes: tuple[str, ...] = ("L1", "L2"),
                   now: datetime | None = None) -> list[TruckPlan]:
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    slots = {min(trucks - 1, round((i + 0.5) * trucks / len(PLANTS))): plant
             for i, plant in enumerate(PLANTS[:trucks])}
    plans = []
    for n in range(trucks):
        plant = slots.get(n, "normal")
        plans.append(_truck(rng, n + 1, lanes[n % len(lanes)], plant, now))
    return plans


def _truck(rng: random.Random, number: int, lane: str, plant: str, now: datetime) -> TruckPlan:
    country = rng.choice(list(OFFICES))
    tractor = _plate(rng, country)
    trailer = _plate(rng, country) if rng.random() < 0.7 else ""
    declared_kg = float(rng.randrange(14_000, 40_000, 10))
    consignor = Party(name=rng.choice(COMPANIES)[0], country=country, id=f"{country}{rng.randint(10**7, 10**8 - 1)}")
    name, ccountry = rng.choice(WATCHED) if plant == "watch_consignee" else rng.choice(COMPANIES)
    consignee = Party(name=name, country=ccountry, id=f"{ccountry}{rng.randint(10**7, 10**8 - 1)}")
    goods = [TOBACCO] if plant == "tobacco" else rng.sample(GOODS, rng.randint(1, 3))
    declared_empty = plant == "empty_loaded"
    if declared_empty:
        declared_kg = float(rng.randrange(13_000, 16_000, 10))  # tractor and empty trailer
        goods = []
    measured = declared_kg * (1 + rng.uniform(-0.02, 0.02))
    if plant == "overweight":
        measured = declared_kg * rng.uniform(1.18, 1.30)
    if plant == "empty_loaded":
        measured = rng.uniform(28_000, 36_000)
    measured = round(measured / 20) * 20  # one scale division
    items = [
        Item(hs_code=code, origin=rng.choice(["XK", "AL", "RS", "TR", "CN", "DE"]), description=desc,
             packages=rng.randint(10, 400), gross_kg=round(declared_kg / len(goods)),
             value_eur=rng.randint(5_000, 90_000))
        for code, desc in goods
    ]
    record = None
    if plant != "no_record":
        record = PreArrival(
            reference=f"{country}{now:%y}EX{rng.randint(10**8, 10**9 - 1)}",
            procedure="transit" if rng.random() < 0.3 else "export",
            tractor_plate=tractor, trailer_plate=trailer, gross_kg=declared_kg, declared_empty=declared_empty,
            consignor=consignor, consignee=consignee, items=items, country_of_dispatch=country,
            office_of_exit=OFFICES[country], office_of_entry="XK000301",
            packages=sum(i.packages for i in items), value_eur=sum(i.value_eur for i in items),
            sent_at=now - timedelta(minutes=rng.randint(20, 240)), expires_at=now + timedelta(days=3),
        )
    flat = lambda p: p.replace(" ", "").replace("-", "")  # noqa: E731
    tractor_read = flat(tractor)
    if plant == "ocr_errors":
        tractor_read = misread(tractor_read, rng, errors=1)
    return TruckPlan(
        number=number, lane=lane, plant=plant, tractor_plate=tractor, trailer_plate=trailer,
        tractor_read=tractor_read, trailer_read=flat(trailer), measured_kg=measured, record=record,
        expected_hits=EXPECTED_HITS[plant], expected_channel=EXPECTED_CHANNEL.get(plant),
    )
