"""An output for the core's bus that keeps every command it is handed, for assertions."""

from __future__ import annotations


class Recorder:
    """Accepts every command and keeps it, in order."""

    name = "recorder"

    def __init__(self) -> None:
        self.commands: list = []

    def accepts(self, command: object) -> bool:
        return True

    def execute(self, command: object) -> None:
        self.commands.append(command)
