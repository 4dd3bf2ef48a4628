"""Safe state on SIGTERM, in a real child process with a real signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from testkit.processes import reaped

REPO = Path(__file__).resolve().parents[3]

CHILD = r'''
import json, signal, sys, threading, time
from gpiozero.pins.mock import MockFactory
from edge_agent.commands import OpenBarrier
from edge_agent.config import GateConfig
from edge_agent.devices.gate.controller import GateController
from edge_agent.simulators.barrier import simulated_barrier

factory = MockFactory()
gate = GateController("L1", GateConfig(pin_factory="mock"), lambda event: None, pin_factory=factory,
                      equipment=simulated_barrier())
stop = threading.Event()

def on_term(signum, frame):
    gate.safe_state()  # what the agent's handler does first
    stop.set()

signal.signal(signal.SIGTERM, on_term)
gate.execute(OpenBarrier(lane="L1"))
deadline = time.monotonic() + 20
while gate.state()["lights"] != "green" and time.monotonic() < deadline:
    gate.renew_permission()
    time.sleep(0.01)
print("GREEN" if gate.state()["lights"] == "green" else "NOT-GREEN", flush=True)
while not stop.wait(0.01):
    gate.renew_permission()
at_signal = {"red": factory.pin("GPIO22").state, "green": factory.pin("GPIO23").state}
while gate.state()["barrier"] != "closed" and time.monotonic() < deadline + 20:
    time.sleep(0.01)
time.sleep(0.6)  # let the close pulse end
print(json.dumps({"at_signal": at_signal, "state": gate.state()["barrier"],
                  "close": [s.state for s in factory.pin("GPIO27").states]}), flush=True)
gate.close()
'''


def test_sigterm_puts_the_gate_in_the_safe_state(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reaped(child):
        assert child.stdout.readline().strip() == "GREEN"
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["at_signal"] == {"red": True, "green": False}  # red in the handler itself
    assert report["state"] == "closed"
    assert report["close"] == [False, True, False]
