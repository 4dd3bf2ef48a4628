import random

from edge_agent.plates.normal_form import canonical, format_countries, normalize_plate
from edge_agent.simulators.anpr_camera import (
    COUNTRIES,
    WESTERN_BALKANS,
    confuse,
    corrupt,
    random_plate,
    render_plate,
    render_scene,
)


def test_random_plates_fit_their_country_shapes():
    rng = random.Random(1)
    for country in WESTERN_BALKANS:
        for _ in range(50):
            _, text = random_plate(rng, country)
            assert country in format_countries(normalize_plate(text)), (country, text)
    assert {random_plate(rng)[0] for _ in range(500)} == set(COUNTRIES)


def test_confuse_swaps_only_lookalikes():
    rng = random.Random(2)
    for _ in range(100):
        _, text = random_plate(rng)
        wrong = confuse(text, 2, rng)
        assert len(wrong) == len(text) and canonical(normalize_plate(wrong)) == canonical(normalize_plate(text))


def test_corrupt_rate_is_per_character():
    rng = random.Random(3)
    changed = total = 0
    for _ in range(2000):
        text = "BG1234AA"
        wrong = corrupt(text, 0.10, rng, indel_share=0)
        changed += sum(a != b for a, b in zip(text, wrong))
        total += len(text)
    assert 0.08 < changed / total < 0.12
    assert corrupt("BG 123-AA", 0.0, rng) == "BG 123-AA"


def test_rendered_plate_and_scene_shapes():
    rng = random.Random(4)
    plate = render_plate("BG 123-AA", "SRB", rng, height_px=110)
    assert plate.shape == (110, 520, 3)
    # Blue band on the left, light plate, dark characters.
    assert plate[50, 10, 0] > plate[50, 10, 2] + 80
    assert plate[:, 100:].max() > 200 and plate[:, 100:].min() < 80
    scene, crop = render_scene(plate, rng, role="trailer", size=(1280, 720))
    assert scene.shape == (720, 1280, 3) and 0 < crop.shape[0] < 200 and crop.shape[1] > crop.shape[0]
