"""The Debian packages as built: lintian's verdict, what they hold, and the arm64 wheels."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPILED = {"numpy", "opencv_python_headless", "pydantic_core", "rapidfuzz", "cffi", "markupsafe",
            "argon2_cffi_bindings", "pynacl"}


def build_module():
    spec = importlib.util.spec_from_file_location("edge_agent_build", REPO / "packaging" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True,
                          check=True).stdout.strip()


def contents(deb: Path) -> list[str]:
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    return [line.split()[-1].removeprefix(".") for line in listing.splitlines()]


def wheels(deb: Path) -> dict[str, str]:
    """distribution -> wheel file name, from the package's wheelhouse."""
    prefix = "/usr/share/edge-agent/wheelhouse/"
    return {name[len(prefix):].split("-")[0].lower(): name[len(prefix):]
            for name in contents(deb) if name.startswith(prefix) and name.endswith(".whl")}


def test_lintian_finds_no_error_in_either_package(amd64_deb, arm64_deb):
    for deb in (amd64_deb, arm64_deb):
        result = subprocess.run(["lintian", "--fail-on", "error", str(deb)], capture_output=True, text=True,
                                check=False)
        errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
        assert errors == [] and result.returncode == 0, result.stdout + result.stderr


def test_the_package_holds_wheels_and_scripts_and_leaves_the_site_file_to_the_site(amd64_deb):
    assert field(amd64_deb, "Package") == "edge-agent"
    assert field(amd64_deb, "Architecture") == "amd64"
    depends = field(amd64_deb, "Depends")
    assert "python3 (>= 3.11)" in depends and "python3 (<< 3.12)" in depends
    # The broker is the RAU's: the site's package neither needs nor pulls it.
    assert "mosquitto" not in depends + field(amd64_deb, "Recommends")
    files = contents(amd64_deb)
    assert "/usr/lib/edge-agent/make-release" in files and "/usr/lib/edge-agent/switch-release" in files
    assert [f for f in files if f.startswith(("/etc/", "/opt/", "/var/"))] == []
    held = wheels(amd64_deb)
    assert held["bcp_edge_agent"].endswith("-py3-none-any.whl")
    assert set(held) >= COMPILED and "pip" in held


def test_the_arm64_package_holds_aarch64_wheels_for_python_311(arm64_deb, amd64_deb):
    assert field(arm64_deb, "Architecture") == "arm64"
    held = wheels(arm64_deb)
    assert set(held) == set(wheels(amd64_deb))  # the same dependencies, for the other machine
    for dist, name in held.items():
        python, abi, platform = name.removesuffix(".whl").split("-")[-3:]
        if platform == "any":
            assert abi == "none" and dist not in COMPILED, name
            continue
        assert all(p.endswith("_aarch64") for p in platform.split(".")), name
        glibc = [tuple(map(int, m)) for m in re.findall(r"manylinux_(\d+)_(\d+)_", platform)]
        assert "manylinux2014" in platform or min(glibc) <= (2, 36), name  # Debian 12 / bookworm: glibc 2.36
        assert (python, abi) == ("cp311", "cp311") or (abi == "abi3" and int(python[3:]) <= 11), name
    assert set(held) >= COMPILED


def test_the_tag_check_refuses_wheels_the_board_cannot_run():
    wrong = build_module().wrong_wheels
    good = ["numpy-2.4.6-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
            "opencv_python_headless-5.1.0.95-cp37-abi3-manylinux_2_28_aarch64.whl",
            "cffi-2.1.1-cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64.whl",
            "click_default_group-1.2.4-py2.py3-none-any.whl"]
    bad = ["numpy-2.4.6-cp312-cp312-manylinux_2_27_aarch64.whl",  # another Python
           "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.whl",  # another machine
           "numpy-2.4.6-cp311-cp311-manylinux_2_39_aarch64.whl",  # a newer glibc than bookworm's
           "numpy-2.4.6-cp311-cp311-musllinux_1_2_aarch64.whl",  # another C library
           "pynacl-1.6.2-cp312-abi3-manylinux_2_34_aarch64.whl",  # abi3 from a later Python
           "numpy-2.4.6.tar.gz"]
    assert wrong("arm64", good) == []
    assert wrong("arm64", bad) == bad


def test_the_bundle_holds_the_package_and_install_notes_with_its_sha256(arm64_deb, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "packaging/build.py"), "bundle", "--arch", "arm64",
                             "--deb", str(arm64_deb), "--out", str(tmp_path)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    version = arm64_deb.name.split("_")[1]
    archive = tmp_path / f"edge-agent-{version}-arm64.tar"
    assert result.stdout.strip() == str(archive)
    checked = subprocess.run(["sha256sum", "--check", f"{archive.name}.sha256"], cwd=tmp_path, capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0 and f"{archive.name}: OK" in checked.stdout, checked.stdout + checked.stderr
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [f"edge-agent-{version}-arm64/INSTALL.txt",
                                          f"edge-agent-{version}-arm64/{arm64_deb.name}"]
        packed = tar.extractfile(f"edge-agent-{version}-arm64/{arm64_deb.name}").read()
        notes = tar.extractfile(f"edge-agent-{version}-arm64/INSTALL.txt").read().decode()
    assert packed == arm64_deb.read_bytes()
    assert f"sha256sum -c {archive.name}.sha256" in notes and f"apt install ./{arm64_deb.name}" in notes
    assert len(notes.splitlines()) < 40  # short: a technician reads it at the board
