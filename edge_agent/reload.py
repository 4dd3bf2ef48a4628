"""Telling a running agent that its indicator files changed: a pid file and SIGHUP.

`edge-agent indicators import|add-local` change files under `<data_dir>/indicators/`
while the service runs. The agent writes its pid to `<data_dir>/agent.pid` when it
starts; the commands send that process SIGHUP (as `systemctl reload edge-agent` does,
ExecReload in the unit), and the agent's core reloads the rules in force and queues
what changed for the RAU. When no agent runs, the change is taken, and queued, at its
next start.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

PID_FILE = "agent.pid"


def write_pid(data_dir: Path) -> None:
    Path(data_dir, PID_FILE).write_text(f"{os.getpid()}\n", encoding="ascii")


def remove_pid(data_dir: Path) -> None:
    path = Path(data_dir, PID_FILE)
    with contextlib.suppress(FileNotFoundError, ValueError):
        if int(path.read_text(encoding="ascii").strip()) == os.getpid():
            path.unlink()


def running_agent(data_dir: Path) -> int | None:
    """The pid of the agent running on this data directory, or None."""
    try:
        pid = int(Path(data_dir, PID_FILE).read_text(encoding="ascii").strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None  # no pid file, a stale one, or the process is gone
    # A recycled pid belongs to some other program: only signal an agent.
    return pid if b"edge-agent" in cmdline or b"edge_agent" in cmdline else None


def signal_reload(data_dir: Path) -> str:
    """Ask the running agent to reload; returns what happened, for the command to print."""
    pid = running_agent(data_dir)
    if pid is None:
        return "no agent runs on this data directory: it takes the change, and queues it for the RAU, when it starts"
    try:
        os.kill(pid, signal.SIGHUP)
    except PermissionError:
        return f"the agent (pid {pid}) could not be told: run this with sudo, or `sudo systemctl reload edge-agent`"
    except ProcessLookupError:
        return "no agent runs on this data directory: it takes the change, and queues it for the RAU, when it starts"
    return f"the running agent (pid {pid}) takes the change now and queues it for the RAU"
