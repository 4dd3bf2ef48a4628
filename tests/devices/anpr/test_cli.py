import json

from click.testing import CliRunner

from edge_agent.config import CameraConfig
from edge_agent.devices.anpr.cli import anpr
from edge_agent.simulators.cli import simulate


def test_read_prints_json_per_image(us_photos, tmp_path):
    path, truth = us_photos[2]
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    result = CliRunner().invoke(anpr, ["read", str(path), str(junk)])
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines[0]["plates"][0]["text"] == truth
    assert set(lines[0]["plates"][0]) == {"text", "confidence", "alternatives", "box", "raw", "countries"}
    assert lines[1]["error"] == "not an image" and lines[1]["plates"] == []
    assert result.exit_code == 1  # one image without a plate


def test_read_with_the_sites_plate_countries(us_photos):
    path, truth = us_photos[1]  # 0SG719: read OSG719, as US records would not write it
    assert truth == "0SG719"
    as_us_site = CliRunner().invoke(anpr, ["read", "--plate-country", "USA", str(path)])
    assert json.loads(as_us_site.output)["plates"][0]["text"] == truth
    unknown = CliRunner().invoke(anpr, ["read", "--plate-country", "XX", str(path)])
    assert unknown.exit_code == 2 and "no plate grammar for XX" in unknown.output


def test_normalize_command():
    result = CliRunner().invoke(anpr, ["normalize", "ВG 123-АА", "8G 123-AA"])
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert first["text"] == "BG123AA" and first["countries"] == ["AL", "SRB", "NMK"]
    assert second["format_fixes"] == ["BG123AA"]


def test_simulate_camera_pushes_to_a_listener(start_listener):
    listener, sink = start_listener([CameraConfig(id="c1", vendor="generic", role="trailer")])
    result = CliRunner().invoke(simulate, ["camera", "--url", listener.url, "--format", "generic", "--camera", "c1",
                                                  "--count", "2", "--country", "NMK", "--interval-s", "0",
                                                  "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert len(sink.posted) == 2 and all("NMK" in r.country or r.country for r in sink.posted)
    assert [json.loads(line)["status"] for line in result.output.splitlines()] == [200, 200]
