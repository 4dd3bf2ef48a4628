"""`edge-agent install`: set a Debian or Raspberry Pi OS host up to run the agent as a service.

What it does, in order (each step is printed; `--dry-run` only prints):

1. groups dialout, video and gpio (gpio does not exist on plain Debian), and a system
   user `edge-agent` in them, with no login shell and no home of its own;
2. directories: /etc/edge-agent (configuration, root-owned, group-readable),
   /etc/edge-agent/pinmaps, /var/lib/edge-agent (the database and evidence),
   /usr/share/doc/edge-agent;
3. files: the unit files into /etc/systemd/system (ExecStart pointed at this
   installation's `edge-agent`), the udev rules, the pin maps, docs/wiring.md, and an
   example site file if /etc/edge-agent/site.toml does not exist yet (a site's own
   file is never overwritten);
4. `systemctl daemon-reload`, `systemctl enable edge-agent.service` (`--start` also
   starts it), `udevadm control --reload` and `udevadm trigger`; on a host where systemd
   is not running (a container, a chroot) only the enable.

`--root DIR` does all of it inside DIR instead of / (useradd/groupadd `--root`,
`systemctl --root`; udev is not reloaded), which is how images are prepared and how the
tests run it. The plan is a list of values (`plan()`); `apply()` carries it out.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from edge_agent import shipped

DEFAULT_EXEC = "/opt/edge-agent/venv/bin/edge-agent"
USER = "edge-agent"
GROUPS = ("dialout", "gpio", "video")


@dataclass(frozen=True)
class Step:
    """One thing to do on the host; `argv` steps run a command, the others touch files."""

    what: str
    kind: str  # group | user | dir | file | run
    path: str = ""
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    content: bytes = b""
    argv: tuple[str, ...] = ()
    keep_existing: bool = False


def plan(root: Path, *, exec_path: str, start: bool = False, source: Path | None = None,
         booted: bool | None = None) -> list[Step]:
    """The steps for this host (or image under `root`), from what is already there.

    `source` holds the files to install, laid out as `edge_agent.shipped` (the default):
    systemd/, firmware_config/ and wiring.md. `booted`: whether systemd runs the host
    (default: look, see `systemd_running`); never for an image under `root`.
    """
    source = source or shipped.path()
    chroot = str(root) != "/"
    root_opt = ("--root", str(root)) if chroot else ()
    steps: list[Step] = []
    existing_groups = _names(root / "etc/group")
    for group in GROUPS:
        if group not in existing_groups:
            steps.append(Step(f"create system group {group}", "group", argv=("groupadd", "--system", *root_opt, group)))
    if USER not in _names(root / "etc/passwd"):
        steps.append(Step(
            f"create system user {USER} in {', '.join(GROUPS)}", "user",
            argv=("useradd", "--system", *root_opt, "--home-dir", "/var/lib/edge-agent", "--no-create-home",
                  "--shell", "/usr/sbin/nologin", "--user-group", "--groups", ",".join(GROUPS), USER)))
    for path, mode, owner, group in (
        ("/etc/edge-agent", 0o750, "root", USER),
        ("/etc/edge-agent/pinmaps", 0o750, "root", USER),
        ("/var/lib/edge-agent", 0o750, USER, USER),
        ("/usr/share/doc/edge-agent", 0o755, "root", "root"),
        ("/etc/systemd/system", 0o755, "root", "root"),
        ("/etc/udev/rules.d", 0o755, "root", "root"),
    ):
        steps.append(Step(f"directory {path}", "dir", path=path, mode=mode, owner=owner, group=group))
    for unit in sorted((source / "systemd").glob("*.service")):
        text = unit.read_text(encoding="utf-8").replace(DEFAULT_EXEC, exec_path)
        steps.append(Step(f"unit {unit.name}", "file", path=f"/etc/systemd/system/{unit.name}", content=text.encode()))
    for rules in sorted((source / "firmware_config/udev").glob("*.rules")):
        steps.append(Step(f"udev rules {rules.name}", "file", path=f"/etc/udev/rules.d/{rules.name}",
                          content=rules.read_bytes()))
    for pinmap in sorted((source / "firmware_config/pinmaps").glob("*.toml")):
        steps.append(Step(f"pin map {pinmap.name}", "file", path=f"/etc/edge-agent/pinmaps/{pinmap.name}",
                          content=pinmap.read_bytes(), mode=0o640, group=USER))
    wiring = source / "wiring.md"
    if wiring.is_file():
        steps.append(Step("wiring notes", "file", path="/usr/share/doc/edge-agent/wiring.md",
                          content=wiring.read_bytes()))
    example = source / "firmware_config/site.example.toml"
    if example.is_file():
        steps.append(Step("example site file with a fresh random-selection secret (kept if present)", "file",
                          path="/etc/edge-agent/site.toml", content=with_fresh_secret(example.read_bytes()),
                          mode=0o640, group=USER, keep_existing=True))
    systemctl = ("systemctl", f"--root={root}") if chroot else ("systemctl",)
    # An image being prepared in a chroot or a container has no running systemd to reload
    # or start anything; enabling works without it (symlinks).
    booted = not chroot and (systemd_running() if booted is None else booted)
    if booted:
        steps.append(Step("reload systemd", "run", argv=("systemctl", "daemon-reload")))
    steps.append(Step("enable edge-agent.service", "run",
                      argv=(*systemctl, "enable", *(("--now",) if start and booted else ()), "edge-agent.service")))
    if not chroot:
        steps.append(Step("reload udev rules", "run", argv=("udevadm", "control", "--reload")))
        steps.append(Step("apply udev rules", "run", argv=("udevadm", "trigger")))
    return steps


def apply(steps: list[Step], root: Path, echo=click.echo) -> None:
    """Carry the plan out; a failing command stops the installation with its message."""
    for step in steps:
        echo(f"  {step.what}")
        if step.kind in ("group", "user", "run"):
            if step.argv[0] == "udevadm" and shutil.which("udevadm") is None:
                echo("    skipped: udevadm not found (no udev on this host)")
                continue
            result = subprocess.run(step.argv, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise click.ClickException(
                    f"{' '.join(step.argv)} failed: {result.stderr.strip() or result.returncode}")
            continue
        target = root / step.path.lstrip("/")
        if step.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(step.mode)
        elif step.kind == "file":
            if step.keep_existing and target.exists():
                echo("    kept the existing file")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(step.content)
            target.chmod(step.mode)
        _chown(target, step.owner, step.group, root)


@click.command("install")
@click.option("--root", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="Install into this directory tree (an image) instead of the host.")
@click.option("--dry-run", is_flag=True, help="Print the steps, change nothing.")
@click.option("--exec", "exec_path", default=None,
              help=f"The edge-agent program for ExecStart (default: this installation's, else {DEFAULT_EXEC}).")
@click.option("--start", is_flag=True, help="Also start the service now (not with --root).")
def install(root: Path, dry_run: bool, exec_path: str | None, start: bool) -> None:
    """Create the service user and directories, install the units, udev rules and pin maps.

    For Debian 12 and Raspberry Pi OS (bookworm). Run as root; then edit
    /etc/edge-agent/site.toml and check the wiring with `edge-agent gpio test`.
    """
    root = root.resolve()
    exec_path = exec_path or _this_program()
    if not (root / "etc/debian_version").is_file():
        raise click.ClickException(f"{root}: not a Debian or Raspberry Pi OS system (no /etc/debian_version)")
    steps = plan(root, exec_path=exec_path, start=start)
    click.echo(f"installing the edge agent into {root} (ExecStart {exec_path})" + (": dry run" if dry_run else ""))
    if dry_run:
        for step in steps:
            click.echo(f"  {step.what}" + (f": {' '.join(step.argv)}" if step.argv else f": {step.path}"))
        return
    if os.geteuid() != 0:
        raise click.ClickException("run as root (sudo edge-agent install)")
    apply(steps, root)
    if start and str(root) == "/" and not systemd_running():
        click.echo("  not started: systemd is not running on this host")
    click.echo("done. Next: edit /etc/edge-agent/site.toml, run `edge-agent gpio test`, "
               "then `systemctl start edge-agent`.")


def systemd_running() -> bool:
    """sd_booted(3): the host runs systemd as its init system."""
    return Path("/run/systemd/system").is_dir()


def _this_program() -> str:
    candidate = Path(sys.executable).parent / "edge-agent"
    return str(candidate) if candidate.is_file() else DEFAULT_EXEC


def _names(path: Path) -> set[str]:
    try:
        return {line.split(":", 1)[0] for line in path.read_text(encoding="utf-8").splitlines() if line}
    except OSError:
        return set()


def _ids(path: Path) -> dict[str, int]:
    out = {}
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                out[fields[0]] = int(fields[2])
    except OSError:
        pass
    return out


def _chown(target: Path, owner: str, group: str, root: Path) -> None:
    # Names are looked up in the target's own account files: under --root the user exists
    # only there, with ids that may differ from the build host's.
    uid = _ids(root / "etc/passwd").get(owner)
    gid = _ids(root / "etc/group").get(group)
    if uid is not None and gid is not None and os.geteuid() == 0:
        os.chown(target, uid, gid)


def with_fresh_secret(site_file: bytes) -> bytes:
    """The example site file with a random-selection secret of its own (site.load_site
    refuses the example's empty one)."""
    line = f'random_secret = "{secrets.token_hex(32)}"   # written by edge-agent install: keep it secret'
    text, count = re.subn(r'(?m)^random_secret = "[^"]*".*$', lambda _: line, site_file.decode("utf-8"), count=1)
    if count != 1:
        raise click.ClickException("the example site file has no random_secret line to fill in")
    return text.encode("utf-8")
