"""`edge-agent install --root DIR`: the real useradd, groupadd and systemctl, inside a directory tree."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_agent import shipped
from edge_agent.config import parse_config
from edge_agent.install import install, plan
from edge_agent.site import secret_problems


@pytest.fixture
def image(tmp_path):
    return tmp_image(tmp_path / "image")


def tmp_image(root):
    """A minimal Debian tree: account files and /etc/debian_version."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "debian_version").write_text("12.7\n")
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\nvideo:x:44:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\ndialout:*::\nvideo:*::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o600)
    return root


def run(*args):
    result = CliRunner().invoke(install, list(args), catch_exceptions=False)
    return result


def test_dry_run_changes_nothing(image):
    before = sorted(p.relative_to(image) for p in image.rglob("*"))
    result = run("--root", str(image), "--dry-run", "--exec", "/srv/agent/bin/edge-agent")
    assert result.exit_code == 0, result.output
    assert "create system group gpio: groupadd --system --root" in result.output
    assert "create system user edge-agent" in result.output
    assert "create system group dialout" not in result.output  # already there
    assert sorted(p.relative_to(image) for p in image.rglob("*")) == before


def test_install_into_an_image(image):
    result = run("--root", str(image), "--exec", "/srv/agent/bin/edge-agent")
    assert result.exit_code == 0, result.output
    passwd = (image / "etc/passwd").read_text()
    assert "edge-agent:x:" in passwd and ":/var/lib/edge-agent:/usr/sbin/nologin" in passwd
    groups = {line.split(":")[0]: line.split(":")[3] for line in (image / "etc/group").read_text().splitlines()}
    for group in ("dialout", "gpio", "video"):
        assert "edge-agent" in groups[group].split(","), group
    unit = (image / "etc/systemd/system/edge-agent.service").read_text()
    assert "ExecStart=/srv/agent/bin/edge-agent run --config /etc/edge-agent/site.toml" in unit
    assert (image / "etc/systemd/system/edge-agent-sim@.service").is_file()
    wants = image / "etc/systemd/system/multi-user.target.wants/edge-agent.service"
    assert wants.is_symlink() and os.readlink(wants) == "/etc/systemd/system/edge-agent.service"
    assert (image / "etc/udev/rules.d/70-edge-agent.rules").read_text().count("gpiochip") >= 1
    assert (image / "etc/edge-agent/pinmaps/rpi4.toml").is_file()
    assert (image / "usr/share/doc/edge-agent/wiring.md").is_file()
    state = image / "var/lib/edge-agent"
    assert stat.S_IMODE(state.stat().st_mode) == 0o750
    uid = int(next(line for line in passwd.splitlines() if line.startswith("edge-agent:")).split(":")[2])
    assert state.stat().st_uid == uid
    assert stat.S_IMODE((image / "etc/edge-agent").stat().st_mode) == 0o750
    # The example site file, with a random-selection secret of this site's own.
    site = image / "etc/edge-agent/site.toml"
    secret = parse_config(site.read_text(), str(site)).policy.random_secret
    assert len(secret) == 64 and int(secret, 16) and secret_problems(parse_config(site.read_text())) == []
    other = tmp_image(image.parent / "other")
    assert run("--root", str(other)).exit_code == 0
    assert parse_config((other / "etc/edge-agent/site.toml").read_text()).policy.random_secret != secret


def test_second_install_keeps_the_site_file_and_the_user(image):
    assert run("--root", str(image)).exit_code == 0
    site = image / "etc/edge-agent/site.toml"
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text("# this site's own configuration\n")
    result = run("--root", str(image))
    assert result.exit_code == 0, result.output
    assert site.read_text() == "# this site's own configuration\n"
    assert "create system user" not in result.output
    assert [line.split(":")[0] for line in (image / "etc/passwd").read_text().splitlines()].count("edge-agent") == 1


def test_refuses_a_non_debian_tree(tmp_path):
    result = CliRunner().invoke(install, ["--root", str(tmp_path)])
    assert result.exit_code != 0
    assert "not a Debian or Raspberry Pi OS system" in result.output


def test_a_host_without_a_running_systemd_is_enabled_but_not_reloaded_or_started():
    """A chroot or container preparing a board: `systemctl daemon-reload` and `--now` would fail there."""
    booted = [s.argv for s in plan(Path("/"), exec_path="/x/edge-agent", start=True, booted=True) if s.kind == "run"]
    assert ("systemctl", "daemon-reload") in booted
    assert ("systemctl", "enable", "--now", "edge-agent.service") in booted
    not_booted = [s.argv for s in plan(Path("/"), exec_path="/x/edge-agent", start=True, booted=False)
                  if s.kind == "run"]
    assert ("systemctl", "daemon-reload") not in not_booted
    assert ("systemctl", "enable", "edge-agent.service") in not_booted


def test_the_plan_installs_the_files_the_package_ships(image):
    """Units, udev rules, pin maps and wiring notes come from edge_agent.shipped, wherever it is installed."""
    files = {s.path: s.content for s in plan(image, exec_path="/x/edge-agent") if s.kind == "file"}
    pinmaps = sorted(p.name for p in shipped.path("firmware_config", "pinmaps").glob("*.toml"))
    assert pinmaps and all(f"/etc/edge-agent/pinmaps/{name}" in files for name in pinmaps)
    assert files["/etc/udev/rules.d/70-edge-agent.rules"] == shipped.path(
        "firmware_config", "udev", "70-edge-agent.rules").read_bytes()
    assert files["/usr/share/doc/edge-agent/wiring.md"] == shipped.path("wiring.md").read_bytes()
