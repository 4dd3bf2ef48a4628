"""The plate reader: a second last layer over the line reader's features."""

import random
from pathlib import Path

import numpy as np
import pytest

from edge_agent.devices.anpr import onnx_wire
from edge_agent.devices.anpr.plate_head import FEATURES, PlateHead, ctc_greedy, probabilities
from edge_agent.devices.anpr.ppocr import READER_FILE, LineRead, PpOcr, models_dir
from edge_agent.devices.anpr.recognition import line_text
from edge_agent.plates.grammars import ALPHABET
from edge_agent.plates.normal_form import canonical, normalize_plate
from edge_agent.simulators.anpr_camera import random_plate, render_plate


@pytest.fixture(scope="module")
def ocr() -> PpOcr:
    return PpOcr.load(plate_head=PlateHead.load())


def _characters(text, country, seed, height=60):
    rng = random.Random(seed)
    plate = render_plate(text, country, rng, height_px=height)
    return plate[:, int(plate.shape[1] * 0.1):]  # without the band


def test_the_features_output_is_what_the_readers_last_layer_reads(ocr):
    # The reader's own last layer (read from the model file) over the features output
    # (added to the model's graph) gives the reader's own probabilities: both edits of
    # the ONNX file are right.
    model = (models_dir() / READER_FILE).read_bytes()
    weights, bias = onnx_wire.initializer(model, "linear_8.w_0"), onnx_wire.initializer(model, "linear_8.b_0")
    assert weights.shape == (120, len(ocr.characters)) and bias.shape == (len(ocr.characters),)
    crop = _characters("BG 123-AA", "SRB", 1)
    from edge_agent.devices.anpr.ppocr import _line_input

    width = 48 * 8
    own, features = ocr.reader.run(None, {ocr.reader.get_inputs()[0].name: _line_input(crop, width)[None]})
    assert [o.name for o in ocr.reader.get_outputs()][1] == FEATURES
    assert np.allclose(probabilities(features[0] @ weights + bias), own[0], atol=1e-5)


def test_an_unknown_initializer_or_garbage_is_refused():
    model = (models_dir() / READER_FILE).read_bytes()
    with pytest.raises(KeyError, match="no initializer"):
        onnx_wire.initializer(model, "no such tensor")


def test_the_shipped_head_is_small_and_reads_plate_characters():
    head = PlateHead.load()
    assert head.classes == ALPHABET
    assert head.weights.shape == (120, 37) and head.weights.dtype == np.float32


def test_a_head_of_the_wrong_shape_is_refused(tmp_path):
    head = PlateHead.load()
    PlateHead(weights=head.weights[:, :30], bias=head.bias[:30], classes=head.classes).save(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="classes"):
        PlateHead.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("country", ["SRB", "TR", "PL", "RO", "BIH", "GR"])
def test_reads_rendered_plates_from_the_same_run_as_the_general_reader(ocr, country):
    rng = random.Random(country)
    _, text = random_plate(rng, country)
    (line,) = ocr.read_lines([_characters(text, country, 3)])
    # Right up to look-alikes (O/0 in a Greek OOP8164), which the plate grammars resolve
    # by position; the general read comes from the same run.
    assert canonical(line.plate_text) == canonical(normalize_plate(text)) and line.plate_score > 0.8
    assert canonical(normalize_plate(line.text)) == canonical(normalize_plate(text))


def test_without_a_head_the_reader_reads_as_before():
    ocr = PpOcr.load()
    (line,) = ocr.read_lines([_characters("AB 123 CD", "AL", 5)])
    assert line.plate_text == "" and normalize_plate(line.text) == "AB123CD"
    with pytest.raises(ValueError, match="plate head"):
        ocr.features(_characters("AB 123 CD", "AL", 5))


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    steps = np.array([[0.1, 0.9, 0.0], [0.1, 0.8, 0.1], [0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.3, 0.1, 0.6]])
    assert ctc_greedy(steps, "AB") == ("AAB", pytest.approx((0.9 + 0.7 + 0.6) / 3))
    assert ctc_greedy(np.array([[1.0, 0.0]]), "A") == ("", 0.0)


@pytest.mark.parametrize("general, plate, taken", [
    ("BDJ0529", "5DJ0529", "5DJ0529"),  # plate characters: the plate reader says what they are
    ("HLO KTY1", "HL0KTY1", "HL0KTY1"),
    ("CKO-AIF", "CK0A1F", "CK0A1F"),
    ("2014-05-13 06:49:07", "201405130649", "2014-05-13 06:49:07"),  # a camera's timestamp
    ("06:49:07", "064907", "06:49:07"),
    ("JUN California", "JUNCAL1F0RN1A", "JUN California"),  # too long for a plate
    ("(H)", "H", "(H)"),
    ("КА 1234 ВС", "KA1234BC", "КА 1234 ВС"),  # another script: the general reader's call
    ("BG123AA", "", "BG123AA"),  # no plate head
])
def test_which_read_of_a_line_is_taken(general, plate, taken):
    assert line_text(LineRead(general, 0.9, plate, 0.8))[0] == taken


def test_local_recognition_reads_plates_with_the_shipped_head(recognizer):
    # docs/cameras.md: lines of plate characters are read by the plate reader.
    assert recognizer.plate_reader and recognizer.engine().plate_head is not None
    rng = random.Random(11)
    _, text = random_plate(rng, "TR")
    from edge_agent.simulators.anpr_camera import render_scene

    scene, _ = render_scene(render_plate(text, "TR", rng), rng)
    found = recognizer.recognize(scene)
    assert found and found[0].text == normalize_plate(text)


@pytest.mark.parametrize("has_shm", [True, False])
def test_the_edited_reader_goes_through_memory_and_leaves_no_file(tmp_path, monkeypatch, has_shm):
    import tempfile

    from edge_agent.devices.anpr import ppocr

    # Private folders stand in for /dev/shm and the temporary folder: other processes
    # (a second test run) use the real ones at the same time.
    shm, temporary = tmp_path / "shm", tmp_path / "tmp"
    temporary.mkdir()
    if has_shm:
        shm.mkdir()
    monkeypatch.setattr(ppocr, "IN_MEMORY_DIR", shm)
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # where a board without /dev/shm would write
    made = []
    named = tempfile.NamedTemporaryFile

    def recording(*args, **kwargs):
        f = named(*args, **kwargs)
        made.append(Path(f.name))
        return f

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", recording)
    ocr = PpOcr.load(plate_head=PlateHead.load())
    assert len(ocr.reader.get_outputs()) == 2
    assert [p.parent for p in made] == [shm if has_shm else temporary]
    assert not any(p.exists() for p in made) and list(temporary.iterdir()) == []
