"""Child processes for the tests that run the agent's own commands: each is reaped
however the test ends, and its output is at hand for the failure message."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from testkit.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


class Proc:
    """A child process that is always reaped, killed if need be."""

    def __init__(self, args: list[str], log_path: Path, **kwargs) -> None:
        self.log_path = log_path
        self.log = open(log_path, "ab")  # noqa: SIM115 - the child writes to it until it is reaped
        self.popen = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO, **kwargs)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def serve_central(broker_port: int, db: Path, workdir: Path, *extra: str, name: str = "hub") -> Proc:
    """`edge-agent central serve` against a test broker, returned once it is connected."""
    ready = workdir / f"{name}.ready"
    proc = Proc([sys.executable, "-m", "edge_agent.cli", "central", "serve", "--port", str(broker_port),
                 "--db", str(db), "--ready-file", str(ready), "--client-id", f"rau-{name}-{os.getpid()}",
                 *extra], workdir / f"{name}.log")
    try:
        wait_for(lambda: ready.exists() or not proc.alive(), 30, what="central serve to connect")
        assert proc.alive(), proc.output()
    except BaseException:
        proc.terminate()
        raise
    return proc


@contextlib.contextmanager
def reaped(child: subprocess.Popen, stderr_path: Path | None = None):
    """The child is killed and waited for if it is still running when the block ends.

    With `stderr_path` (where the child's stderr goes), a child still running is first
    asked for its threads' stacks (edge-agent dumps them on SIGUSR1), and the end of
    its stderr is printed, so a test that failed on a hung child says where it hung."""
    try:
        yield child
    finally:
        if child.poll() is None:
            if stderr_path is not None:
                child.send_signal(signal.SIGUSR1)
                time.sleep(1)
            child.kill()
            child.wait()
            if stderr_path is not None and stderr_path.exists():
                print("--- the child's stderr, last 200 lines ---")
                print("\n".join(stderr_path.read_text(errors="replace").splitlines()[-200:]))
