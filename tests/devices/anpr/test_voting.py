import random

from edge_agent.devices.anpr.recognition import Candidate
from edge_agent.devices.anpr.voting import FrameVote, read_frames
from edge_agent.plates.normal_form import normalize_plate
from edge_agent.simulators.anpr_camera import render_plate, render_scene


def _reads(*pairs: tuple[str, float]) -> list[list[Candidate]]:
    return [[Candidate(text=text, confidence=confidence, raw=text)] for text, confidence in pairs]


def test_each_character_goes_to_the_weightiest_vote():
    # No frame read the plate right; together they do.
    vote = FrameVote(agree=2, max_frames=3)
    for frame in _reads(("BG12SAA", 0.6), ("8G123AA", 0.5), ("BG123A4", 0.7)):
        assert not vote.settled
        vote.add(frame)
    assert vote.settled
    best = vote.answer()
    assert best is not None and best.text == "BG123AA"
    assert {"BG12SAA", "8G123AA", "BG123A4"} <= set(best.alternatives)
    assert 0 < best.confidence <= 0.6


def test_reads_of_another_length_do_not_shift_the_characters():
    vote = FrameVote(max_frames=4)
    for frame in _reads(("BG123AA", 0.5), ("BG12AA", 0.9), ("BG1Z3AA", 0.4), ("BG123AA", 0.3)):
        vote.add(frame)
    best = vote.answer()
    assert best is not None and best.text == "BG123AA" and best.confidence >= 0.5


def test_frames_without_a_plate_count_but_do_not_vote():
    vote = FrameVote(agree=2)
    vote.add([])
    assert vote.answer() is None and not vote.settled
    for frame in _reads(("KG512MT", 0.8), ("KG512MT", 0.7)):
        vote.add(frame)
    assert vote.settled and vote.frames == 3
    assert vote.same_plate(_reads(("KG5I2MT", 0.9))[0])
    assert not vote.same_plate(_reads(("SU733PR", 0.9))[0])


def test_reading_stops_once_two_frames_agree(recognizer):
    rng = random.Random(8)
    plate = render_plate("NS 4417-KA", "SRB", rng)
    decoded = []

    def frames():
        for i in range(6):  # the same truck, each frame framed, lit and noised anew
            decoded.append(i)
            yield render_scene(plate, rng, role="tractor")[0]

    found = read_frames(recognizer, frames(), agree=2, max_frames=5)
    assert [c.text for c in found] == [normalize_plate("NS 4417-KA")]
    assert len(decoded) < 6  # the vote settled before the frames ran out
    assert read_frames(recognizer, iter(())) == []
