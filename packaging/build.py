"""Build what a crossing without internet installs from: the wheel, a wheelhouse for the
board, the Debian package, and the offline bundle for a USB stick.

    python packaging/build.py wheel  --out dist
    python packaging/build.py deb    --arch arm64 --out dist   # wheel and wheelhouse included
    python packaging/build.py bundle --arch arm64 --out dist   # the .deb, INSTALL.txt, SHA-256
    python packaging/build.py bundle --arch arm64 --deb dist/edge-agent_0.1.0_arm64.deb

`make deb` and `make bundle` run these for amd64 and arm64. The board runs Debian 12 or
Raspberry Pi OS bookworm: Python 3.11 and glibc 2.36. The wheelhouse holds one wheel
of every dependency for that Python and the board's architecture, fetched with this
machine's pip (its index and proxy settings apply); nothing is compiled, so an arm64
package builds on an amd64 machine. On the board, packaging/lib/make-release installs
from the wheelhouse with no index at all.

The Debian package itself is built by dpkg-buildpackage and debhelper from
packaging/debian/, then checked with lintian (errors fail the build).
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
PACKAGE = "edge-agent"
DISTRIBUTION = "bcp-edge-agent"
# Debian arch -> the machine name in wheel platform tags.
MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
BOARD_PYTHON = (3, 11)
BOARD_GLIBC = (2, 36)
MAINTAINER = "BCP Edge Agent Maintainers <maintainers@bcp-edge-agent.org>"
# Left out of the copy the wheel is built from: the build must see the tree as a fresh
# clone would, not a stale build/ of setuptools' or a virtual environment.
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
              ".mypy_cache", ".ruff_cache")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("wheel", "deb", "bundle"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--out", type=Path, default=REPO / "dist", help="where the results go (default dist/)")
        if name != "wheel":
            cmd.add_argument("--arch", choices=sorted(MACHINES), required=True)
            cmd.add_argument("--version", dest="deb_version", default=None,
                             help="the Debian version (default: the project's, e.g. 0.1.0)")
            cmd.add_argument("--extras", default="", help="optional dependency groups to carry, e.g. ocr")
            cmd.add_argument("--no-lintian", action="store_true", help="skip lintian (it runs by default)")
        if name == "bundle":
            cmd.add_argument("--deb", type=Path, default=None, help="bundle this package instead of building one")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.what == "wheel":
        print(build_wheel(args.out))
        return 0
    extras = tuple(e for e in args.extras.split(",") if e)
    if args.what == "bundle" and args.deb:
        print(build_bundle(args.arch, args.deb, args.out))
        return 0
    deb = build_deb(args.arch, args.out, deb_version=args.deb_version, extras=extras, lintian=not args.no_lintian)
    if args.what == "deb":
        print(deb)
        return 0
    archive = build_bundle(args.arch, deb, args.out)
    print(archive)
    return 0


# --------------------------------------------------------------------------- versions

def project_version() -> str:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def schema_version() -> int:
    """The database schema this version brings: the number of migrations (edge_agent/store/schema.py)."""
    sys.path.insert(0, str(REPO))
    try:
        from edge_agent.store.schema import MIGRATIONS
    finally:
        sys.path.remove(str(REPO))
    return len(MIGRATIONS)


# --------------------------------------------------------------------------- the wheel

def build_wheel(out: Path) -> Path:
    """The project's wheel, built from a copy of the working tree (uncommitted changes
    included, build leftovers not)."""
    with tempfile.TemporaryDirectory(prefix="edge-agent-src-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(src)])
    wheel = out / f"{DISTRIBUTION.replace('-', '_')}-{project_version()}-py3-none-any.whl"
    if not wheel.is_file():
        raise SystemExit(f"pip built no {wheel.name} in {out}")
    return wheel


# --------------------------------------------------------------------------- the wheelhouse

def platform_tags(arch: str) -> list[str]:
    """Every manylinux tag the board's glibc runs, newest first (pip takes them literally)."""
    machine = MACHINES[arch]
    oldest = 5 if machine == "x86_64" else 17
    tags = [f"manylinux_{BOARD_GLIBC[0]}_{minor}_{machine}" for minor in range(BOARD_GLIBC[1], oldest - 1, -1)]
    return [*tags, f"manylinux2014_{machine}"]


def download_wheelhouse(arch: str, wheel: Path, out: Path, extras: tuple[str, ...] = ()) -> list[Path]:
    """The wheel and a wheel of every dependency, for the board's Python and `arch`."""
    out.mkdir(parents=True, exist_ok=True)
    requirement = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    platforms = [arg for tag in platform_tags(arch) for arg in ("--platform", tag)]
    # pip itself rides along: the board makes its environment without ensurepip
    # (python3.11-venv is not on every board) and runs pip from this wheel.
    run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", *platforms,
         "--implementation", "cp", "--python-version", ".".join(map(str, BOARD_PYTHON)),
         "--dest", str(out), requirement, "pip"])
    wheels = sorted(out.glob("*.whl"))
    wrong = wrong_wheels(arch, [w.name for w in wheels])
    if wrong:
        raise SystemExit(f"wheels that do not run on {arch} with Python 3.11: {', '.join(wrong)}")
    return wheels


WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<python>[^-]+)-(?P<abi>[^-]+)"
                        r"-(?P<platform>[^-]+)\.whl$")


def wrong_wheels(arch: str, names: list[str]) -> list[str]:
    """The wheel file names among `names` that the board cannot install (PEP 425 tags,
    PEP 600 manylinux): a foreign machine, a newer glibc, another Python."""
    machine = MACHINES[arch]
    wrong = []
    for name in names:
        match = WHEEL_NAME.match(name)
        if not match or not (_python_fits(match["python"], match["abi"])
                             and any(_platform_fits(p, machine) for p in match["platform"].split("."))):
            wrong.append(name)
    return wrong


def _python_fits(pythons: str, abis: str) -> bool:
    major, minor = BOARD_PYTHON
    for python in pythons.split("."):
        for abi in abis.split("."):
            if abi == "none" and python in ("py3", f"py{major}{minor}", f"cp{major}{minor}"):
                return True
            if abi == f"cp{major}{minor}" and python == f"cp{major}{minor}":
                return True
            if abi == "abi3" and re.fullmatch(r"cp3\d+", python) and int(python[3:]) <= minor:
                return True
    return False


LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _platform_fits(platform: str, machine: str) -> bool:
    if platform == "any":
        return True
    if not platform.endswith(f"_{machine}"):
        return False
    base = platform[: -len(machine) - 1]
    if base in LEGACY_MANYLINUX:
        return LEGACY_MANYLINUX[base] <= BOARD_GLIBC
    glibc = re.fullmatch(r"manylinux_(\d+)_(\d+)", base)
    return glibc is not None and (int(glibc[1]), int(glibc[2])) <= BOARD_GLIBC


# --------------------------------------------------------------------------- the Debian package

def build_deb(arch: str, out: Path, *, deb_version: str | None = None, extras: tuple[str, ...] = (),
              lintian: bool = True) -> Path:
    """edge-agent_VERSION_ARCH.deb in `out`, built by dpkg-buildpackage from packaging/debian."""
    version = project_version()
    deb_version = deb_version or version
    with tempfile.TemporaryDirectory(prefix="edge-agent-deb-") as tmp:
        stage = Path(tmp) / f"{PACKAGE}-{deb_version}"
        wheel = build_wheel(Path(tmp) / "wheel")
        download_wheelhouse(arch, wheel, stage / "wheelhouse", extras)
        requirement = f"{DISTRIBUTION}[{','.join(extras)}]=={version}" if extras else f"{DISTRIBUTION}=={version}"
        (stage / "requirement.txt").write_text(requirement + "\n")
        shutil.copytree(PACKAGING / "lib", stage / "lib")
        shutil.copytree(PACKAGING / "debian", stage / "debian")
        values = {"@VERSION@": deb_version, "@SCHEMA_VERSION@": str(schema_version())}
        for script in (stage / "debian").glob(f"{PACKAGE}.*"):
            text = script.read_text()
            for key, value in values.items():
                text = text.replace(key, value)
            script.write_text(text)
        (stage / "debian/changelog").write_text(changelog(deb_version))
        # nocheck: the package has no build-time tests (the project's run in its own suite),
        # which also spares a cross build debhelper's warnings about running them.
        env = {**os.environ,
               "DEB_BUILD_OPTIONS": " ".join([os.environ.get("DEB_BUILD_OPTIONS", ""), "nocheck"]).strip()}
        run(["dpkg-buildpackage", "--build=binary", "--no-sign", f"--host-arch={arch}", "--no-check-builddeps",
             "--no-pre-clean"], cwd=stage, env=env)
        built = Path(tmp) / f"{PACKAGE}_{deb_version}_{arch}.deb"
        if not built.is_file():
            raise SystemExit(f"dpkg-buildpackage made no {built.name}")
        target = out / built.name
        shutil.move(built, target)
    if lintian:
        run(["lintian", "--fail-on", "error", "--suppress-tags", "bad-distribution-in-changes-file", str(target)])
    return target


def changelog(deb_version: str) -> str:
    """debian/changelog for this build (the project's own history is in git). Its date is
    $SOURCE_DATE_EPOCH, else the last commit's, else now; dpkg-buildpackage dates the
    package's files from it, so a commit builds the same package twice."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=False).stdout
    date = email.utils.formatdate(int(epoch) if epoch.strip().isdigit() else None, localtime=False)
    return (f"{PACKAGE} ({deb_version}) bookworm; urgency=medium\n\n"
            f"  * Built from the bcp-edge-agent source tree, version {project_version()}.\n\n"
            f" -- {MAINTAINER}  {date}\n")


# --------------------------------------------------------------------------- the offline bundle

INSTALL_TXT = """\
BCP edge agent {version} for {arch} boards: offline installation
================================================================

For {boards}.
Nothing is downloaded on the board. It needs python3 (3.11), which Raspberry Pi OS
and a standard Debian 12 have; on a minimal Debian 12, install python3 beforehand.

1. Check the archive you copied (on the USB stick or on the board):
     sha256sum -c {archive}.sha256
2. Unpack it and install the package:
     tar -xf {archive} && cd {stem}
     sudo apt install ./{deb}
   (or: sudo dpkg -i {deb})
   This creates the user edge-agent, /etc/edge-agent/site.toml with a secret of its
   own, /var/lib/edge-agent, the systemd units and the udev rules, and the program in
   /opt/edge-agent from the wheels inside the package.
3. First installation: edit /etc/edge-agent/site.toml, then
     /opt/edge-agent/venv/bin/edge-agent check-config /etc/edge-agent/site.toml
     /opt/edge-agent/venv/bin/edge-agent gpio test
     sudo systemctl start edge-agent
4. Upgrade: install the newer package the same way. The site file and the data stay;
   the database is migrated and the service restarted. If the new version does not
   report READY within its start timeout, the previous version and its database are
   put back and started again, and the installation reports the failure.
   A package older than the database's schema refuses to install.
"""
BOARDS = {"arm64": "Raspberry Pi OS 64-bit (bookworm) on a Raspberry Pi 4 or 5, or Debian 12 on arm64",
          "amd64": "Debian 12 (bookworm) on an amd64 (x86-64) machine"}


def build_bundle(arch: str, deb: Path, out: Path) -> Path:
    """edge-agent-VERSION-ARCH.tar with the package and INSTALL.txt, and its .sha256 beside it."""
    _, version, deb_arch = deb.name.removesuffix(".deb").split("_")
    if deb_arch != arch:
        raise SystemExit(f"{deb.name} is a package for {deb_arch}, not {arch}")
    stem = f"{PACKAGE}-{version}-{arch}"
    archive = out / f"{stem}.tar"
    install = INSTALL_TXT.format(version=version, arch=arch, archive=archive.name, stem=stem, deb=deb.name,
                                 boards=BOARDS[arch])
    with tempfile.TemporaryDirectory(prefix="edge-agent-bundle-") as tmp:
        text = Path(tmp) / "INSTALL.txt"
        text.write_text(install)
        with tarfile.open(archive, "w") as tar:
            # The package is compressed already; the tar stays plain so any board can open it.
            for path in (text, deb):
                tar.add(path, arcname=f"{stem}/{path.name}", filter=_plain_owner)
    with open(archive, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    (out / f"{archive.name}.sha256").write_text(f"{digest}  {archive.name}\n")
    return archive


def _plain_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


# --------------------------------------------------------------------------- running tools

def run(argv: list[str], **kwargs) -> None:
    print("+ " + " ".join(argv), file=sys.stderr, flush=True)
    result = subprocess.run(argv, check=False, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with exit code {result.returncode}")


if __name__ == "__main__":
    sys.exit(main())
