"""Tie a plate read to one open pre-arrival record, or to none when in doubt.

The index holds the tractor and trailer plates of every open SEED record. A read is
compared in two steps:

1. *Candidates*: plates whose canonical form (look-alike characters collapsed, see
   `plates.canonical`) is within `max_edits` plain edits of the read's canonical form.
   rapidfuzz does this over all plates in well under a millisecond for 10,000 plates.
2. *Cost*: a weighted edit distance between the normal forms, in which swapping
   look-alike characters (0/O/D/Q, 1/I/L, 8/B, 5/S, 2/Z, 6/G, 4/A) is cheap and any
   other edit costs 1.

The best candidate wins only if

- its cost is within `max_cost` (less for short plates);
- the runner-up (a different record, or the same record's other plate) is at least
  `min_margin` dearer, by default one look-alike swap;
- it is unlikely to be a chance neighbour. Each edit that no look-alike explains (an
  *arbitrary* edit) leaves less of the plate to go by, and where other plates crowd
  within one further edit of the read, the plate of a truck with no record lands that
  close to someone else's by chance: see `crowd_limit`.

Otherwise the read matches nothing: a truck tied to someone else's declaration is worse
than a truck the officer identifies by hand. Two open records with the same plate are
therefore never matched by plate alone.

benchmarks/anpr.py measures it (its figures are in the README's performance table):
nearly every read of a truck with a record is tied to it and almost none to a wrong one,
but a single read is weak for trucks with no record. A good share of their plates lands
within two arbitrary edits of someone else's, because plates of the same shape are that
close to one another, and refusing those would cost the reads that need two edits. The
lane therefore does not trust one read alone: the truck's other plate must fit the
declaration's other registration (`disagreement`, applied by the core before assessing),
and with both plates read the benchmark ties no truck with no record to a declaration.

    >>> index = PlateIndex()
    >>> index.add(record)                  # a models.PreArrival
    >>> index.match("8G 123-AA")           # -> PlateMatch(reference=..., role=PlateRole.TRACTOR,
    ...                                    #    distance=1, quality='fuzzy', cost=0.3, plate='BG123AA')
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from edge_agent.models import PlateRole, PreArrival
from edge_agent.plates.normal_form import CONFUSABLE_GROUPS, canonical, normalize_plate

log = logging.getLogger(__name__)

CONFUSABLE_COST = 0.3
EDIT_COST = 1.0  # any other substitution
INDEL_COST = 1.0  # a dropped or an extra character
# Other plates tolerated within one further edit of a winner that needed two arbitrary
# edits (see `crowd_limit`). Chosen on the demo scenario's plates, where a truck with no
# record (read E98T267) had nine plates around someone else's E08T667; a lower limit
# refuses enough right reads in benchmarks/anpr.py to bring some seeds near the target.
CROWD_LIMIT = 9

_GROUP_OF = {c: i for i, group in enumerate(CONFUSABLE_GROUPS) for c in group}


@dataclass(frozen=True)
class PlateMatch:
    """The record a read belongs to: which plate of it, and how close the read was.

    The lane keeps it with the plate (`lane.Plate.match`): `expects_trailer` tells the
    lane to wait a moment for the trailer's read before assessing.
    """

    reference: str
    role: PlateRole
    distance: int = 0  # plain edit distance between the read and the registered plate
    quality: Literal["exact", "fuzzy"] = "exact"
    cost: float = 0.0  # weighted distance that decided (look-alike swaps are cheap)
    plate: str = ""  # the registered plate, normal form
    expects_trailer: bool = False  # the record declares a trailer plate


@dataclass(frozen=True)
class Candidate:
    reference: str
    role: PlateRole
    plate: str
    cost: float


class PlateIndex:
    """The open pre-arrival plates, searchable by a noisy read. Thread-safe.

    `add` replaces an earlier record with the same reference (a newer version), so
    `update` is the same call; `remove` forgets a reference. A record past its
    `expires_at` is never matched when `match` is given the time, even before the core
    removes it on its next tick.
    """

    def __init__(self, *, max_edits: int = 3, max_cost: float = 3.0, min_margin: float = CONFUSABLE_COST,
                 min_length: int = 4) -> None:
        self.max_edits = max_edits
        self.max_cost = max_cost
        self.min_margin = min_margin
        self.min_length = min_length
        self._lock = threading.Lock()
        self._records: dict[str, tuple[str, str]] = {}  # reference -> (tractor, trailer)
        self._expires: dict[str, datetime] = {}  # reference -> expires_at, where the record has one
        self._by_plate: dict[str, set[tuple[str, PlateRole]]] = {}
        self._by_canon: dict[str, set[str]] = {}  # canonical -> plates in normal form
        self._canon_keys: list[str] | None = None  # rebuilt lazily after changes

    # ------------------------------------------------------------------ contents

    def add(self, record: PreArrival) -> None:
        with self._lock:
            self._remove(record.reference)
            tractor = normalize_plate(record.tractor_plate)
            trailer = normalize_plate(record.trailer_plate)
            self._records[record.reference] = (tractor, trailer)
            if record.expires_at is not None:
                self._expires[record.reference] = record.expires_at
            for plate, role in ((tractor, PlateRole.TRACTOR), (trailer, PlateRole.TRAILER)):
                if plate:
                    self._by_plate.setdefault(plate, set()).add((record.reference, role))
                    self._by_canon.setdefault(canonical(plate), set()).add(plate)
            self._canon_keys = None

    update = add

    def add_many(self, records: Iterable[PreArrival]) -> None:
        for record in records:
            self.add(record)

    def remove(self, reference: str) -> None:
        with self._lock:
            self._remove(reference)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, reference: object) -> bool:
        return reference in self._records

    # ------------------------------------------------------------------ search

    def match(self, text: str, now: datetime | None = None) -> PlateMatch | None:
        """The one record this read belongs to, or None when none or several fit.

        With `now`, records that expired by then are left out, as if already removed.
        """
        read = normalize_plate(text)
        ranked = self._live(self._same_canonical(read), now)
        # Every plate outside the read's canonical bucket costs at least one full edit, so
        # a bucket winner cheaper than that by the margin needs no wider search.
        if not ranked or ranked[0].cost + self.min_margin > EDIT_COST:
            ranked = self._live(self.candidates(read), now)
        if not ranked:
            return None
        best = ranked[0]
        if best.cost > self._max_cost(best.plate):
            return None
        runner_up = next((c for c in ranked[1:] if (c.reference, c.role) != (best.reference, best.role)), None)
        # Rounded: 2.3 - 2.0 is a hair under one look-alike swap in floating point.
        if runner_up is not None and round(runner_up.cost - best.cost, 6) < self.min_margin:
            log.info("plate_ambiguous read=%s best=%s/%s cost=%.2f other=%s/%s cost=%.2f", read,
                     best.reference, best.role.value, best.cost, runner_up.reference, runner_up.role.value,
                     runner_up.cost)
            return None
        arbitrary = arbitrary_edits(read, best.plate)
        crowd = len({c.plate for c in ranked if c.plate != best.plate and c.cost <= round(best.cost + EDIT_COST, 6)})
        if crowd >= crowd_limit(arbitrary):
            log.info("plate_crowded read=%s best=%s/%s cost=%.2f arbitrary=%d plates_one_edit_further=%d", read,
                     best.reference, best.role.value, best.cost, arbitrary, crowd)
            return None
        return PlateMatch(
            reference=best.reference,
            role=best.role,
            distance=edit_distance(read, best.plate),
            quality="exact" if best.plate == read else "fuzzy",
            cost=best.cost,
            plate=best.plate,
            expects_trailer=bool(self._records.get(best.reference, ("", ""))[1]),
        )

    def expired(self, now: datetime) -> list[str]:
        """References whose records expired by `now` (the core marks and removes them)."""
        with self._lock:
            return [ref for ref, at in self._expires.items() if at <= now]

    def candidates(self, text: str) -> list[Candidate]:
        """Every registered plate near the read, cheapest first (for the console, too)."""
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        read = normalize_plate(text)
        if len(read) < self.min_length:
            return []
        with self._lock:
            if self._canon_keys is None:
                self._canon_keys = list(self._by_canon)
            found = process.extract(canonical(read), self._canon_keys, scorer=Levenshtein.distance,
                                    score_cutoff=self.max_edits, limit=None)
            out = []
            for key, _edits, _pos in found:
                for plate in self._by_canon.get(key, ()):
                    cost = weighted_distance(read, plate)
                    for reference, role in self._by_plate.get(plate, ()):
                        out.append(Candidate(reference, role, plate, cost))
        out.sort(key=lambda c: (c.cost, c.reference, c.role.value))
        return out

    # ------------------------------------------------------------------ internals

    def _live(self, ranked: list[Candidate], now: datetime | None) -> list[Candidate]:
        if now is None or not self._expires:
            return ranked
        expires = self._expires
        return [c for c in ranked if c.reference not in expires or expires[c.reference] > now]

    def _same_canonical(self, read: str) -> list[Candidate]:
        if len(read) < self.min_length:
            return []
        with self._lock:
            out = [Candidate(reference, role, plate, weighted_distance(read, plate))
                   for plate in self._by_canon.get(canonical(read), ())
                   for reference, role in self._by_plate.get(plate, ())]
        out.sort(key=lambda c: (c.cost, c.reference, c.role.value))
        return out

    def fits(self, read: str, plate: str) -> bool:
        """Whether `read` could be `plate` read with errors, by the same cost rule as `match`."""
        registered = normalize_plate(plate)
        return weighted_distance(normalize_plate(read), registered) <= self._max_cost(registered)

    def _max_cost(self, plate: str) -> float:
        # Short plates carry little information: forgive less the shorter they are. (The
        # registered plate's length counts, not the read's: a dropped character is an error.)
        if len(plate) >= 7:
            return self.max_cost
        if len(plate) == 6:
            return min(self.max_cost, 2.0)
        return min(self.max_cost, 2 * CONFUSABLE_COST)

    def _remove(self, reference: str) -> None:
        self._expires.pop(reference, None)
        plates = self._records.pop(reference, None)
        if plates is None:
            return
        for plate in plates:
            if not plate:
                continue
            owners = self._by_plate.get(plate, set())
            owners -= {o for o in owners if o[0] == reference}
            if not owners:
                self._by_plate.pop(plate, None)
                same = self._by_canon.get(canonical(plate), set())
                same.discard(plate)
                if not same:
                    self._by_canon.pop(canonical(plate), None)
        self._canon_keys = None


def weighted_distance(a: str, b: str) -> float:
    """Edit distance where a look-alike substitution costs CONFUSABLE_COST, others 1."""
    indel = INDEL_COST
    previous = [j * indel for j in range(len(b) + 1)]
    for i, ca in enumerate(a, start=1):
        current = [i * indel]
        group = _GROUP_OF.get(ca)
        for j, cb in enumerate(b, start=1):
            if ca == cb:
                sub = 0.0
            elif group is not None and _GROUP_OF.get(cb) == group:
                sub = CONFUSABLE_COST
            else:
                sub = EDIT_COST
            current.append(min(previous[j] + indel, current[j - 1] + indel, previous[j - 1] + sub))
        previous = current
    return round(previous[-1], 6)


def crowd_limit(arbitrary: int) -> float:
    """How many other plates may lie within one further edit of a winner whose read needed
    `arbitrary` edits that no look-alike explains; that many or more and it is refused."""
    # The winner is either the truck, read with that many arbitrary errors, or a chance
    # neighbour of a truck with no record. The crowd one edit further out measures how
    # densely registered plates lie here, so how likely such a chance neighbour is. Reads
    # with one more arbitrary error are about ten times rarer (at 10 % character errors
    # about half of the errors are arbitrary), so each divides the tolerated crowd by ten:
    # 90 at one edit (never reached), 9 at two, at three no other plate at all.
    return CROWD_LIMIT * 10.0 ** (2 - arbitrary)


def arbitrary_edits(a: str, b: str) -> int:
    """The fewest edits between two normal forms that no look-alike swap explains."""
    return edit_distance(canonical(a), canonical(b))


def edit_distance(a: str, b: str) -> int:
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(a, b))


def disagreement(record: PreArrival, matched_role: PlateRole, other_read: str, other_reference: str,
                 fits) -> str:
    """Why the truck's other plate read contradicts the record one read was tied to ("" if not).

    One read within the matcher's tolerance of someone's plate is weak evidence where
    thousands of plates are open: a truck with no record often lands that close to
    another truck's plate. Its other plate is a second, independent witness.
    """
    if other_reference:
        if other_reference != record.reference:
            return f"the two plate reads match two declarations ({record.reference}, {other_reference})"
        return ""
    expected = record.trailer_plate if matched_role is PlateRole.TRACTOR else record.tractor_plate
    if not expected or not other_read or fits(other_read, expected):
        return ""
    declared = "trailer" if matched_role is PlateRole.TRACTOR else "tractor"
    return f"plate read {other_read} is not the declared {declared} {expected} of {record.reference}"
