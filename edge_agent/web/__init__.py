"""The security parts both web consoles share (the officers' console at a site,
edge_agent/console, and the RAU's console at the hub, edge_agent/central/console):
Argon2id accounts and server-side sessions with CSRF tokens (accounts.py), the
hash-chained audit log (audit.py), the security headers (headers.py), login throttling
(throttle.py, login_audit.py) and trusted-proxy addresses (forwarded.py).

Each console brings its own roles and permissions and its own database file; this room
knows neither console.
"""
