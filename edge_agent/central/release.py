"""Signed bundles released through the hub: kept in the ledger, published once by the
worker holding the duties lease (`hub.Hub`), whichever worker or command released them.

Where a bundle goes: the topic of its level and scope, retained for a full bundle (the
fallback every site finds on subscribing), not for a delta (which must never replace the
full one). Read from the bundle's signed body, the same fields `central publish` reads
(docs/sync.md, "Signed indicator bundles"). The hub does not verify the signatures: the
sites do, against their root of trust; `central sign --check-root` checks before release.

    found = release(ledger, Path("bundle-7.json").read_bytes())   # (Destination, new) or a reason
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from edge_agent.central.ledger import Ledger
from edge_agent.sync import topics


@dataclass(frozen=True)
class Destination:
    topic: str
    retain: bool
    label: str  # "full bundle central:central v7", for logs and answers


def destination(payload: bytes) -> Destination | str:
    """The bundle's destination, or why it is not a bundle the hub can place."""
    try:
        signed = json.loads(payload)["bundle"]["signed"]
        level, scope, kind, version = signed["level"], signed["scope"], signed.get("kind", "full"), signed["version"]
    except (ValueError, KeyError, TypeError) as err:
        return f"not a bundle: {err!r}"
    if not isinstance(scope, str) or not scope or "/" in scope or "+" in scope or "#" in scope:
        return f"bad scope {scope!r}"
    if level == "central":
        topic = topics.INDICATORS_CENTRAL
    elif level == "region":
        topic = topics.indicators_region(scope)
    elif level == "site" and scope not in topics.RESERVED_SITES:
        topic = topics.down(scope, "indicators")
    else:
        return f"bad level {level!r} for scope {scope!r}"
    return Destination(topic, kind == "full", f"{kind} bundle {level}:{scope} v{version}")


def release(ledger: Ledger, payload: bytes) -> tuple[Destination, bool] | str:
    """Queue a bundle for publication: (its destination, False if these exact bytes were
    released before and so are not published again), or why it cannot be released."""
    found = destination(payload)
    if isinstance(found, str):
        return found
    new = ledger.queue_bundle(hashlib.sha256(payload).hexdigest(), found.topic, found.retain, found.label, payload)
    return found, new
