"""The wheel carries what the commands need, and works from a fresh environment outside the checkout."""

from __future__ import annotations

import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

from edge_agent.config import parse_config
from edge_agent.site import secret_problems

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_the_wheel_carries_every_shipped_file(wheelhouse):
    wheel = wheelhouse / f"bcp_edge_agent-{VERSION}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"edge_agent/shipped/{p.relative_to(REPO).as_posix()}"
                for folder in ("firmware_config", "systemd") for p in (REPO / folder).rglob("*") if p.is_file()}
    expected.add("edge_agent/shipped/wiring.md")
    expected.add("edge_agent/devices/anpr/plate_head.npz")  # the trained plate reader's weights
    assert expected - names == set()
    for needed in ("firmware_config/site.example.toml", "firmware_config/pinmaps/rpi4.toml",
                   "firmware_config/scales/toledo.toml", "firmware_config/indicators/demo.json",
                   "firmware_config/mosquitto/bcp.acl", "firmware_config/udev/70-edge-agent.rules",
                   "systemd/edge-agent.service"):
        assert f"edge_agent/shipped/{needed}" in names
    # the files themselves, not links into a checkout the board does not have
    infos = {i.filename: i for i in zipfile.ZipFile(wheel).infolist()}
    example = infos["edge_agent/shipped/firmware_config/site.example.toml"]
    assert example.file_size == (REPO / "firmware_config/site.example.toml").stat().st_size


@pytest.fixture(scope="module")
def fresh_venv(wheelhouse, tmp_path_factory, shell_env) -> Path:
    """Debian's Python 3.11, a new environment, the wheel and its dependencies from the
    wheelhouse only (no index, no network), pip run from its own wheel there."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    env = shell_env
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    pip = next(wheelhouse.glob("pip-*.whl"))
    subprocess.run(["unshare", "--net", str(venv / "bin/python"), f"{pip}/pip", "--isolated", "install", "--quiet",
                    "--no-index", "--find-links", str(wheelhouse), f"bcp-edge-agent=={VERSION}"], check=True, env=env)
    return venv


def test_installed_from_the_wheel_it_finds_its_files_outside_the_checkout(fresh_venv, tmp_path, shell_env, make_root):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(fresh_venv / "bin/edge-agent"), *args], cwd=tmp_path, env=shell_env,
                              capture_output=True, text=True, timeout=240, check=False)

    where = subprocess.run([str(fresh_venv / "bin/python"), "-c", "import edge_agent; print(edge_agent.__file__)"],
                           cwd=tmp_path, env=shell_env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(fresh_venv)), where.stdout

    demo = run("demo", "--trucks", "3", "--quiet", "--data-dir", str(tmp_path / "demo"))
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "3/3 trucks handled as the scenario expects" in demo.stdout

    image = make_root(tmp_path / "image")
    installed = run("install", "--root", str(image))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (image / "etc/systemd/system/edge-agent.service").read_text().count(
        f"ExecStart={fresh_venv}/bin/edge-agent run") == 1
    assert (image / "etc/udev/rules.d/70-edge-agent.rules").is_file()
    assert (image / "etc/edge-agent/pinmaps/rpi4.toml").is_file()
    assert (image / "usr/share/doc/edge-agent/wiring.md").is_file()

    # check-config on the example as `install` wrote it, with the site's fresh secret
    site = image / "etc/edge-agent/site.toml"
    assert secret_problems(parse_config(site.read_text())) == []
    checked = run("check-config", str(site))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok: site xk-merdare" in checked.stdout
