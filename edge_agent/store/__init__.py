"""The agent's SQLite database: the only code that speaks SQL to it.

    store = Store.open(data_dir / "agent.db")      # the core's writer (one per process)
    with store.transaction():
        store.record_event(event)
        store.outbox_append("hit", payload, now)
    view = StoreView(data_dir / "agent.db")        # other threads: read-only, thread-safe

One module per concern, each holding its tables' SQL:

store.py        Store: every concern below over one connection
database.py     opening (writer, readers), migrations, transactions, durability
schema.py       the schema as forward migrations
events.py       events, rejected inputs, gate and output commands, audit anchors
prearrivals.py  SEED pre-arrival records and their status
crossings.py    crossings, assessments, hits, control acts, and the figures over them
outbox.py       events queued for the RAU, read by the sync client
rechannels.py   officers' re-channel requests and the RAU's channel raises
retention.py    holds on crossings, and what retention reads and deletes
view.py         StoreView, the read-only window for the console and the demo

Other databases have their own owners: the console's users, sessions and audit log
(web/accounts.py, web/audit.py, web/throttle.py, for both consoles) and the RAU's
ledger (central/ledger/).
"""

from edge_agent.store.database import iso
from edge_agent.store.outbox import CUSTOMS_STREAMS, STREAM_PRIORITY, OutboxRow
from edge_agent.store.rechannels import RauRaise
from edge_agent.store.schema import MIGRATIONS
from edge_agent.store.store import Store
from edge_agent.store.view import StoreView

__all__ = [
    "CUSTOMS_STREAMS",
    "MIGRATIONS",
    "STREAM_PRIORITY",
    "OutboxRow",
    "RauRaise",
    "Store",
    "StoreView",
    "iso",
]
