import random
import sys
from pathlib import Path

from edge_agent.models import Party, PlateRole, PreArrival
from edge_agent.plates.association import PlateIndex, weighted_distance

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from benchmarks.anpr import make_records
from edge_agent.simulators.anpr_camera import corrupt

PARTY = Party(name="Test d.o.o.")


def record(reference: str, tractor: str, trailer: str = "", version: int = 1) -> PreArrival:
    return PreArrival(reference=reference, version=version, tractor_plate=tractor, trailer_plate=trailer,
                      gross_kg=30000, consignor=PARTY, consignee=PARTY)


def index_of(*records: PreArrival) -> PlateIndex:
    index = PlateIndex()
    for r in records:
        index.add(r)
    return index


def test_exact_read_matches_tractor_and_trailer():
    index = index_of(record("R1", "BG 123-AA", "BG 456-XY"), record("R2", "SK 1234 AB"))
    found = index.match("bg123aa")
    assert (found.reference, found.role, found.quality, found.distance) == ("R1", PlateRole.TRACTOR, "exact", 0)
    trailer = index.match("BG 456 XY")
    assert (trailer.reference, trailer.role) == ("R1", PlateRole.TRAILER)


def test_lookalike_misreads_match_as_fuzzy():
    index = index_of(record("R1", "BG 123-AA"), record("R2", "SK 1234 AB"))
    found = index.match("8G I23-4A")  # three look-alike errors
    assert found.reference == "R1" and found.quality == "fuzzy" and found.distance == 3
    assert 0 < found.cost < 1


def test_cyrillic_registration_matches_latin_read():
    index = index_of(record("R1", "СА 1234 ВХ"))
    assert index.match("CA1234BX").quality == "exact"


def test_one_other_error_still_matches_when_alone():
    index = index_of(record("R1", "BG 123-AA"), record("R2", "NI 987-KM"))
    found = index.match("BG 123-AC")
    assert found.reference == "R1" and found.distance == 1


def test_ambiguous_read_matches_nothing():
    # Two open records whose plates differ in one look-alike: a read as far from both is ambiguous.
    index = index_of(record("R1", "BG 123-AB"), record("R2", "BG 123-A8"))
    assert index.match("BG 123-AS") is None  # S is as near to B as to 8
    # Two records one edit apart from the read, in different directions.
    index = index_of(record("R1", "NS 4567-TT"), record("R2", "NS 4567-TK"))
    assert index.match("NS 4567-TX") is None


def test_one_lookalike_swap_apart_is_enough_margin():
    # The runner-up one look-alike swap dearer than the winner: the read sides with the winner.
    index = index_of(record("R1", "BG 123-AB"), record("R2", "BG 123-A8"))
    assert index.match("BG 123-AB").reference == "R1"
    assert index.match("BG 123-A8").reference == "R2"


# The lane case: a truck with no record, its trailer read exactly as E98T267, was tied to
# someone else's tractor E08T667 (9->0 and 2->6, no look-alikes) among 10,000 open
# records. These are the plates that lay one edit further from the read there.
CROWD_AROUND_E98T267 = ("T98T216", "K98J264", "J98T288", "K96T067", "E98T845", "E99O667", "E97T363",
                        "O90T266", "J98T761")


def test_two_arbitrary_edits_among_crowded_plates_match_nothing():
    crowded = index_of(record("OTHER", "E08-T-667"),
                       *(record(f"N{i}", plate) for i, plate in enumerate(CROWD_AROUND_E98T267)))
    assert crowded.match("E98T267") is None
    # Alone, two arbitrary edits on seven characters still match: at 10 % character errors
    # about 3 % of the reads need them (benchmarks/anpr.py), too many to send to the officer.
    found = index_of(record("OTHER", "E08-T-667")).match("E98T267")
    assert (found.reference, found.distance, found.quality) == ("OTHER", 2, "fuzzy")


def test_three_arbitrary_edits_match_only_with_no_plate_one_edit_further():
    index = index_of(record("R1", "BG 123-AA"))
    assert index.match("BG 789-AA").reference == "R1"  # 1->7, 2->8, 3->9: no look-alikes
    index.add(record("R2", "N6 7B9-XT"))  # three arbitrary edits and two swaps from the read
    assert index.match("BG 789-AA") is None


def test_far_or_short_reads_match_nothing():
    index = index_of(record("R1", "BG 123-AA"))
    assert index.match("ZZ 999-QQ") is None
    assert index.match("BG1") is None
    assert index.match("") is None


def test_remove_and_update_by_reference():
    index = index_of(record("R1", "BG 123-AA", "BG 456-XY"))
    index.update(record("R1", "BG 777-AA", "BG 456-XY", version=2))
    assert index.match("BG 123-AA") is None or index.match("BG 123-AA").plate == "BG777AA"
    assert index.match("BG 777-AA").reference == "R1"
    index.remove("R1")
    assert index.match("BG 777-AA") is None and index.match("BG 456-XY") is None
    assert len(index) == 0
    index.remove("unknown")  # no error


def test_same_plate_on_two_records_is_ambiguous():
    index = index_of(record("R1", "BG 123-AA"), record("R2", "BG 123-AA"))
    assert index.match("BG 123-AA") is None
    index.remove("R2")
    assert index.match("BG 123-AA").reference == "R1"


def test_weighted_distance():
    assert weighted_distance("BG123AA", "BG123AA") == 0
    assert weighted_distance("8G123AA", "BG123AA") == 0.3
    assert weighted_distance("BG123AC", "BG123AA") == 1
    assert weighted_distance("BG123A", "BG123AA") == 1


def test_five_thousand_prearrivals_with_ten_percent_errors():
    rng = random.Random(11)
    pool = make_records(5000, rng)
    index = PlateIndex()
    index.add_many(pool)
    correct = wrong = 0
    reads = 5000
    for _ in range(reads):
        r = rng.choice(pool)
        role, plate = rng.choice(((PlateRole.TRACTOR, r.tractor_plate), (PlateRole.TRAILER, r.trailer_plate)))
        found = index.match(corrupt(plate, 0.10, rng))
        if found is None:
            continue
        if (found.reference, found.role) == (r.reference, role):
            correct += 1
        else:
            wrong += 1
    # The target is 99 % correct and under 0.1 % wrong; benchmarks/anpr.py measures
    # it on 20,000 reads (about 99.0 %). 5,000 reads here vary by a few tenths of a percent.
    assert correct / reads >= 0.985, (correct, wrong)
    assert wrong / reads < 0.001, (correct, wrong)
