"""The core: the one thread that owns the lanes and writes the agent's database.

loop.py             Core: the event queue, one transaction per event, lanes, assessment,
                    crossing records, pre-arrival records; commands after the commit
context.py          what a handler may use (CoreContext) and how it refuses an event
officers.py         control acts and re-channel requests (from the console)
profiles.py         local indicator edits and audit anchors (from the console)
rau.py              the RAU's signed bundles and commands (from the sync downlink)
rules_in_force.py   which indicators the site runs with, and the assessor over them

Handlers are keyed by event type (`Core.register`) and typed against CoreContext; the
console and the sync client only turn the outside world into events and post them.
"""

from edge_agent.core.loop import Core

__all__ = ["Core"]
