"""Carrying commands out without ever blocking the core loop.

Each output (the gate of a lane, the evidence recorder, the console) gets its own
worker thread and a bounded queue. The core only puts; a slow or failing output backs
up its own queue, is counted and logged, and the loop goes on. When a gate output
fails, its worker puts that gate into the safe state (barrier down, red).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Output(Protocol):
    name: str

    def accepts(self, command: object) -> bool: ...

    def execute(self, command: object) -> None: ...


class OutputWorker:
    """One output behind a queue and a thread."""

    def __init__(self, output: Output, *, on_error: Callable[[], None] | None = None, maxsize: int = 1000) -> None:
        self.output = output
        self.on_error = on_error
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.executed = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"output-{output.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, command: object) -> None:
        try:
            self.queue.put_nowait(command)
        except queue.Full:
            self.dropped += 1
            log.error("output_queue_full output=%s command=%s", self.output.name, getattr(command, "kind", command))
            if self.on_error:
                self._safe(self.on_error)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._thread.is_alive():
            self.queue.put(None)
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            command = self.queue.get()
            if command is None:
                return
            try:
                self.output.execute(command)
                self.executed += 1
            except Exception:
                self.failed += 1
                log.exception("output_failed output=%s command=%s", self.output.name, getattr(command, "kind", command))
                if self.on_error:
                    self._safe(self.on_error)

    def _safe(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("output_safe_state_failed output=%s", self.output.name)


class OutputBus:
    """Fans commands out to every output that accepts them."""

    def __init__(self) -> None:
        self.workers: list[OutputWorker] = []

    def add(self, output: Output, *, on_error: Callable[[], None] | None = None) -> OutputWorker:
        worker = OutputWorker(output, on_error=on_error)
        self.workers.append(worker)
        return worker

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def dispatch(self, command: object) -> None:
        for worker in self.workers:
            try:
                accepted = worker.output.accepts(command)
            except Exception:
                log.exception("output_accepts_failed output=%s", worker.output.name)
                continue
            if accepted:
                worker.put(command)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def health(self) -> dict[str, dict[str, int]]:
        return {
            w.output.name: {"executed": w.executed, "failed": w.failed, "dropped": w.dropped, "queued": w.queue.qsize()}
            for w in self.workers
        }
