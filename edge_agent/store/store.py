"""`Store`: the agent's database with every concern's queries over one connection."""

from __future__ import annotations

from edge_agent.store.crossings import Crossings
from edge_agent.store.database import Database
from edge_agent.store.events import Events
from edge_agent.store.outbox import Outbox
from edge_agent.store.prearrivals import PreArrivals
from edge_agent.store.rechannels import Rechannels
from edge_agent.store.retention import Retention


class Store(Events, PreArrivals, Crossings, Outbox, Rechannels, Retention, Database):
    """The agent's database. Construct with `Store.open` (writer) or `Store.reader`."""
