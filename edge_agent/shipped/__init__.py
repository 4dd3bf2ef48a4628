"""The files the agent carries beside its code, found the same way in a checkout and an install.

A technician installs from a wheel or the Debian package on a board with no checkout, so
`edge-agent install`, `edge-agent demo` and the built-in pin maps read their files
through `importlib.resources` from this package, never from the repository:

    firmware_config/   the example site, pin maps, scale presets, demo indicators,
                       the broker's configuration and ACL templates, udev rules
    systemd/           the unit files
    wiring.md          the wiring notes installed to /usr/share/doc/edge-agent

In the repository these names are symbolic links to `firmware_config/`, `systemd/` and
`docs/wiring.md` at the top, which stay the one copy that people edit; building the
wheel copies the files themselves in (pyproject.toml, `package-data`).

    >>> (shipped.path("firmware_config") / "pinmaps" / "rpi4.toml").is_file()
    True
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def path(*parts: str) -> Path:
    """A shipped file or folder on disk.

    pip and the Debian package always install unpacked, so every resource is a real
    file; a zipped install would be a packaging bug, said here rather than later as a
    missing file.
    """
    resource = files(__name__).joinpath(*parts)
    if not isinstance(resource, Path):
        raise RuntimeError(f"edge_agent is installed zipped ({resource}); install it unpacked with pip")
    return resource
