"""Several frames of one truck, one plate: a vote per character, weighted by confidence.

A truck stands in the lane for seconds and a camera (or two, front and rear) gives a
frame every fraction of one; a single frame's read is wrong on a glint, a shadow or a
blur, but rarely wrong the same way twice. Each frame's best read votes: reads of the
length with the most weight behind it vote position by position, each character with
its read's confidence; the character with the most weight wins each position. Frames
stop being read as soon as `agree` of them read the very same text.

    vote = FrameVote(agree=2, max_frames=5)
    for frame in frames:                      # e.g. both cameras' frames, interleaved
        vote.add(recognizer.recognize(frame))
        if vote.settled:
            break
    best = vote.answer()                      # a Candidate, or None

`read_frames(recognizer, frames)` is that loop. Pure apart from the recogniser it is
handed; no state beyond the reads of one truck.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edge_agent.devices.anpr.recognition import Candidate, PlateRecognizer
from edge_agent.plates.association import arbitrary_edits
from edge_agent.plates.normal_form import format_countries

log = logging.getLogger(__name__)

# A frame whose best read is this many unexplained edits from the vote's answer shows
# another plate (the next truck, a plate on the truck's side): `FrameVote.same_plate`.
OTHER_PLATE_EDITS = 3


@dataclass
class FrameVote:
    """The reads of one truck's frames so far."""

    agree: int = 2  # this many frames reading the same text settle the vote
    max_frames: int = 5  # frames with a read after which the vote settles anyway
    reads: list[Candidate] = field(default_factory=list)  # each frame's best read
    frames: int = 0  # frames looked at, with a read or not

    def add(self, candidates: list[Candidate]) -> None:
        """One frame's candidates (best first, maybe none)."""
        self.frames += 1
        if candidates:
            self.reads.append(candidates[0])

    @property
    def settled(self) -> bool:
        if not self.reads:
            return False
        agreeing = Counter(read.text for read in self.reads).most_common(1)[0][1]
        return agreeing >= self.agree or len(self.reads) >= self.max_frames

    def same_plate(self, candidates: list[Candidate]) -> bool:
        """Whether a frame's best read could be the plate this vote is about."""
        answer = self.answer()
        return answer is None or not candidates or arbitrary_edits(candidates[0].text, answer.text) < OTHER_PLATE_EDITS

    def answer(self) -> Candidate | None:
        """The voted plate: the best read of its text when a frame read it so, else a
        new candidate; confidence is the winning characters' least share of the vote
        times the mean confidence of the reads that voted."""
        if not self.reads:
            return None
        by_length: dict[int, list[Candidate]] = defaultdict(list)
        for read in self.reads:
            by_length[len(read.text)].append(read)
        voters = max(by_length.values(), key=lambda reads: sum(r.confidence for r in reads))
        weight = sum(r.confidence for r in voters) or 1e-9
        chars, shares = [], []
        for position in range(len(voters[0].text)):
            tally: dict[str, float] = defaultdict(float)
            for read in voters:
                tally[read.text[position]] += read.confidence
            char, votes = max(tally.items(), key=lambda kv: kv[1])
            chars.append(char)
            shares.append(votes / weight)
        text = "".join(chars)
        confidence = round(min(shares) * weight / len(voters), 4)
        others = tuple(dict.fromkeys(r.text for r in self.reads if r.text != text))
        same = [r for r in self.reads if r.text == text]
        if same:
            best = max(same, key=lambda r: r.confidence)
            return Candidate(text=text, confidence=max(confidence, best.confidence),
                             alternatives=tuple(dict.fromkeys((*others, *best.alternatives)))[:6], box=best.box,
                             raw=best.raw, countries=best.countries)
        return Candidate(text=text, confidence=confidence, alternatives=others[:6], raw=text,
                         countries=format_countries(text))


def read_frames(recognizer: PlateRecognizer, frames: Iterable[Any], *, agree: int = 2,
                max_frames: int = 5) -> list[Candidate]:
    """Read frames one by one until `agree` reads agree (or `max_frames` gave a read, or
    the frames run out); the voted plate, or [] when no frame had one. `frames` may be
    a lazy iterable (ring frames decoded on demand, two cameras' frames interleaved):
    frames after the vote settles are never decoded."""
    vote = FrameVote(agree=agree, max_frames=max_frames)
    for frame in frames:
        vote.add(recognizer.recognize(frame))
        if vote.settled:
            break
    answer = vote.answer()
    if answer is not None:
        log.debug("plate_voted text=%s frames=%d reads=%d", answer.text, vote.frames, len(vote.reads))
    return [answer] if answer is not None else []
