"""Local profile edits and audit anchors from the console, applied by the core.

A local indicator saved on the console (models.LocalIndicatorSaved) is checked with
every other set the site runs with, written to the local set file, swapped into the
rules in force and queued for the RAU, all or nothing. An audit anchor
(models.AuditAnchored) is stored as an event by the core and queued for the RAU here.
"""

from __future__ import annotations

import json
import logging

from edge_agent.commands import Command
from edge_agent.core.context import CoreContext, Handler, refuse
from edge_agent.durable import replace_file
from edge_agent.errors import IndicatorError
from edge_agent.local_rules.local_set import checked_local_set, local_set_path, read_local_set, updated_local_set
from edge_agent.models import AuditAnchored, EventBase, LocalIndicatorSaved
from edge_agent.store import iso

log = logging.getLogger(__name__)


def local_indicator_saved(core: CoreContext, event: LocalIndicatorSaved) -> list[Command]:
    config = core.config
    data_dir = core.store.path.parent  # the agent's data directory
    path = local_set_path(data_dir)
    try:
        doc, raw = updated_local_set(read_local_set(path), event.indicator, config.site.id, event.user, event.at)
        checked_local_set(doc, path, config.rules.indicator_files, data_dir, [c.code for c in config.policy.channels],
                          in_force=core.assessor.rules)
    except (IndicatorError, OSError, ValueError) as err:
        return refuse(core, event, str(err))
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8"))
    core.assessor.reload()  # with the RAU's bundles and the site scope, as at start
    core.store.outbox_append("local_indicator", {
        "site": config.site.id, "indicator": raw, "set_version": doc["version"], "user": event.user,
        "reason": event.reason}, event.at)
    log.info("local_indicator_saved id=%s version=%s user=%s set=%s", raw.get("id"), raw.get("version"),
             event.user, doc["version"])
    return []


def audit_anchored(core: CoreContext, event: AuditAnchored) -> list[Command]:
    # The event row itself is the local anchor (`audit verify` reads it); the outbox row
    # puts a copy where cutting both files on this board cannot reach.
    core.store.outbox_append("audit_anchor", {"site": core.config.site.id, "seq": event.seq,
                                              "hash": event.hash, "at": iso(event.at)}, event.at)
    return []


HANDLERS: dict[type[EventBase], Handler] = {
    LocalIndicatorSaved: local_indicator_saved,
    AuditAnchored: audit_anchored,
}
