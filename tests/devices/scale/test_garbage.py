"""Property tests: garbage between valid frames never crashes a parser, and every valid
frame is still recovered, whether the bytes arrive at once, in chunks or one by one."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.devices.scale.frame import Display, WeightFrame
from edge_agent.devices.scale.protocols import PROTOCOLS

NAMES = sorted(PROTOCOLS)

displays = st.builds(
    Display,
    value_kg=st.integers(-50, 2999).map(lambda n: float(n * 20)),
    motion=st.booleans(),
)
garbage = st.binary(max_size=40)


def expected_raw(name: str, frame: bytes) -> bytes:
    # RLWS evidence ends at the CR; the LF of a CR LF terminator is not part of the frame.
    return frame[:-1] if name == "rlws" else frame


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts}) if data else []
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


def decode(name: str, pieces: list[bytes]) -> list[WeightFrame]:
    parser = PROTOCOLS[name].parser()
    out = []
    for piece in pieces:
        out += parser.feed(piece)
    assert parser.rejected >= 0 and parser.frames >= 0
    return [f for f in out if isinstance(f, WeightFrame)]


def assert_recovered(readings: list[WeightFrame], frames: list[bytes]) -> None:
    """Every sent frame appears, in order, among the readings (garbage may add others)."""
    raws = iter(r.raw for r in readings)
    for frame in frames:
        assert any(raw == frame for raw in raws), f"frame {frame!r} not recovered"


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_garbage_between_frames(name, data):
    spec = PROTOCOLS[name]
    shown = data.draw(st.lists(displays, min_size=1, max_size=6))
    junk = data.draw(st.lists(garbage, min_size=len(shown) + 1, max_size=len(shown) + 1))
    frames = [spec.encode(d) for d in shown]
    stream = junk[0] + b"".join(f + g for f, g in zip(frames, junk[1:]))
    # A trailing frame may legitimately wait for the byte that follows it (Toledo's
    # optional checksum, the reversed XK3190 frame): close the stream with one more frame.
    stream += frames[-1]
    wanted = [expected_raw(name, f) for f in frames]
    cuts = data.draw(st.lists(st.integers(0, 10_000), max_size=8))
    whole = decode(name, [stream])
    assert_recovered(whole, wanted)
    assert_recovered(decode(name, chunked(stream, cuts)), wanted)
    one_by_one = decode(name, [stream[i:i + 1] for i in range(len(stream))])
    assert [r.raw for r in one_by_one] == [r.raw for r in whole]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=100, deadline=None)
@given(noise=st.binary(max_size=600), cuts=st.lists(st.integers(0, 10_000), max_size=10))
def test_arbitrary_bytes_never_raise(name, noise, cuts):
    parser = PROTOCOLS[name].parser()
    for piece in chunked(noise, cuts):
        for frame in parser.feed(piece):
            assert frame.raw  # every value carries its bytes
