"""The RAU's console: a web application beside the hub, on the hub's ledger.

    edge-agent central console --db central.db --port 8090     # users in rau_console.db beside it

Monitoring of every site (link, backlog, newest event, lanes), the hits they sent, and
re-routing a truck from the centre: an analyst raises its channel (never lowers it), the
console queues the site's `raise_channel` downlink command in the ledger and the hub's
lease holder publishes it. Accounts, sessions, CSRF tokens, the audit log, the headers
and the login throttle are the shared web room's (edge_agent/web); the roles are the
RAU's (roles.py). Its users and audit log live in its own SQLite file beside the
ledger, whichever back-end the ledger uses (docs/central.md, "The RAU's console").
"""
