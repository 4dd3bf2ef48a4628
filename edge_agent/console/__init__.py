"""The officers' lane console: a local web application beside the agent.

    handle = start_console(agent, config.console)   # uvicorn in a thread, 127.0.0.1 by default
    handle.url                                      # http://127.0.0.1:8080
    handle.stop()

The console turns forms into events and renders the agent's state; the core applies
the events (edge_agent.core.officers, edge_agent.core.profiles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_agent.console.server import ConsoleHandle


def start_console(agent: Any, config: Any = None) -> ConsoleHandle:
    from edge_agent.console.server import start_console as _start

    return _start(agent, config)


__all__ = ["start_console"]
