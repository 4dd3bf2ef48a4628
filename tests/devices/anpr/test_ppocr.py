"""The PP-OCR runner on its own: real networks, rendered plates."""

import random

import numpy as np
import pytest

from edge_agent.devices.anpr.ppocr import PpOcr, _clockwise, models_dir
from edge_agent.plates.normal_form import normalize_plate
from edge_agent.simulators.anpr_camera import random_plate, render_plate, render_scene


@pytest.fixture(scope="module")
def ocr() -> PpOcr:
    return PpOcr.load()


def test_the_networks_come_from_the_installed_wheel(ocr):
    assert (models_dir() / "PP-OCRv6_rec_small.onnx").is_file()
    # The reader's classes: a blank, its dictionary (from the network's own metadata), a space.
    assert ocr.characters[0] == "" and ocr.characters[-1] == " "
    assert set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") <= set(ocr.characters)


def test_reads_a_plate_crop(ocr):
    rng = random.Random(2)
    country, text = random_plate(rng, "SRB")
    plate = render_plate(text, country, rng, height_px=60)
    characters = plate[:, int(plate.shape[1] * 0.1):]  # without the band
    ((read, score),) = ocr.read([characters])
    assert normalize_plate(read) == normalize_plate(text) and score > 0.8


def test_reads_lines_of_any_width_in_their_order(ocr):
    rng = random.Random(4)
    plates = [render_plate(t, c, rng, height_px=h) for (c, t), h in
              zip((random_plate(rng, "AL"), random_plate(rng, "TR"), random_plate(rng, "PL")), (40, 90, 60))]
    crops = [p[:, int(p.shape[1] * 0.1):] for p in plates] * 3  # more than one batch
    reads = ocr.read(crops)
    assert len(reads) == len(crops)
    assert [normalize_plate(t) for t, _ in reads[:3]] == [normalize_plate(t) for t, _ in reads[3:6]]
    assert ocr.read([]) == []


def test_detects_the_plate_line_in_a_scene(ocr):
    rng = random.Random(6)
    country, text = random_plate(rng, "NMK")
    scene, plate = render_scene(render_plate(text, country, rng), rng)
    quads = ocr.detect(scene)
    assert quads and all(q.shape == (4, 2) for q in quads)
    # Every corner inside the picture, clockwise from the top left.
    for q in quads:
        assert (q >= 0).all() and (q[:, 0] < scene.shape[1]).all() and (q[:, 1] < scene.shape[0]).all()
        assert q[0][0] < q[1][0] and q[0][1] < q[3][1]
    crops = [scene[int(q[:, 1].min()):int(q[:, 1].max()) + 1, int(q[:, 0].min()):int(q[:, 0].max()) + 1]
             for q in quads]
    assert normalize_plate(text) in [normalize_plate(t) for t, _ in ocr.read(crops)]


def test_nothing_to_detect(ocr):
    assert ocr.detect(np.full((360, 640, 3), 200, np.uint8)) == []


def test_corners_are_put_clockwise():
    shuffled = np.array([[10, 20], [0, 0], [10, 0], [0, 20]], np.float32)
    assert _clockwise(shuffled).tolist() == [[0, 0], [10, 0], [10, 20], [0, 20]]
