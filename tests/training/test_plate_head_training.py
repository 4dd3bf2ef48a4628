"""The plate reader's training script, end to end on a handful of lines."""

import random

import numpy as np

from edge_agent.devices.anpr.plate_head import PlateHead
from edge_agent.devices.anpr.ppocr import PpOcr
from edge_agent.plates.grammars import ALPHABET
from edge_agent.simulators.anpr_camera import random_plate, render_plate
from training import plate_head as training


def test_the_starting_head_is_the_readers_own_last_layer_for_plate_characters():
    start = training.starting_head()
    assert start.classes == ALPHABET and start.weights.shape == (120, 37)
    # It reads a plate as the general reader does, from the same features.
    ocr = PpOcr.load(plate_head=start)
    rng = random.Random(8)
    _, text = random_plate(rng, "SRB")
    plate = render_plate(text, "SRB", rng, height_px=60)
    (line,) = ocr.read_lines([plate[:, int(plate.shape[1] * 0.1):]])
    assert line.plate_text == line.text.replace(" ", "").replace("-", "")


def test_a_small_run_writes_a_head_the_agent_loads(tmp_path, capsys):
    out = tmp_path / "head.npz"
    code = training.main(["--limit", "3", "--rendered", "3", "--augment", "1", "--epochs", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "lines from" in printed and "epoch 1/1" in printed and f"wrote {out}" in printed
    head = PlateHead.load(out)
    assert head.classes == ALPHABET
    assert not np.array_equal(head.weights, training.starting_head().weights)  # it was trained


def test_a_us_zero_may_be_the_letter_o_a_rendered_one_may_not():
    real = training.Line("real", "car.jpg", "A0", None, "A0", [])
    rendered = training.Line("rendered", "r-1", "A0", None, "A0", [])
    zero, letter_o = 1 + ALPHABET.index("0"), 1 + ALPHABET.index("O")
    assert training.label(real)[1] == [zero, letter_o]
    assert training.label(rendered)[1] == [zero]
    assert training.right(real, "AO") and not training.right(rendered, "AO")
