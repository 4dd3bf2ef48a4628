"""Local profiles and indicator files, and audit anchors, applied by the core.

A local indicator saved on the console (models.LocalIndicatorSaved) is checked with
every other set the site runs with, written to the local set file, swapped into the
rules in force and queued for the RAU, all or nothing. Indicator files a command wrote
(`indicators add-local`, `indicators import`) arrive as models.IndicatorFilesChanged:
the rules are reloaded and whatever the RAU has not been sent (each local indicator's
content, each imported set's file) is queued, once, by digest. An audit anchor
(models.AuditAnchored) is stored as an event by the core and queued for the RAU here;
so is the evidence chain's new head (models.EvidenceManifestWritten).
"""

from __future__ import annotations

import hashlib
import json
import logging

from edge_agent.commands import Command
from edge_agent.core.context import CoreContext, Handler, refuse
from edge_agent.durable import replace_file
from edge_agent.errors import IndicatorError
from edge_agent.local_rules.local_set import checked_local_set, local_set_path, read_local_set, updated_local_set
from edge_agent.models import (
    AuditAnchored,
    EventBase,
    EvidenceManifestWritten,
    IndicatorFilesChanged,
    LocalIndicatorSaved,
)
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
    core.store.mark_reported(f"local:{raw.get('id')}", _digest(raw), event.at)
    log.info("local_indicator_saved id=%s version=%s user=%s set=%s", raw.get("id"), raw.get("version"),
             event.user, doc["version"])
    return []


def indicator_files_changed(core: CoreContext, event: IndicatorFilesChanged) -> list[Command]:
    if event.reload:
        try:
            core.assessor.reload()
        except (IndicatorError, OSError, ValueError) as err:
            # A file that cannot run now: the set in force stays, and says why.
            core.counters["rules_reload_failed"] += 1
            log.error("rules_reload_failed reason=%s", err)
            return refuse(core, event, f"the indicator files do not load, the set in force stays: {err}")
        core.counters["rules_reloaded"] += 1
        log.info("rules_reloaded indicators=%d set=%s", len(core.assessor.rules), core.assessor.label)
    queued = report_indicator_changes(core, event)
    if queued:
        log.info("indicator_changes_queued rows=%d", queued)
    return []


def report_indicator_changes(core: CoreContext, event: IndicatorFilesChanged) -> int:
    """Queue for the RAU each local indicator and imported set file it has not been sent."""
    config = core.config
    data_dir = core.store.path.parent
    local_path = local_set_path(data_dir)
    queued = 0
    try:
        doc = read_local_set(local_path)
    except (OSError, ValueError) as err:
        log.error("local_set_unreadable path=%s reason=%s", local_path, err)
        doc = {"indicators": []}
    for raw in doc.get("indicators", []):
        key, digest = f"local:{raw.get('id')}", _digest(raw)
        if core.store.reported_digest(key) == digest:
            continue
        core.store.outbox_append("local_indicator", {
            "site": config.site.id, "indicator": raw, "set_version": doc.get("version", ""),
            "user": raw.get("author", ""), "reason": "written with edge-agent indicators add-local"}, event.at)
        core.store.mark_reported(key, digest, event.at)
        queued += 1
    folder = local_path.parent
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path == local_path:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        key, digest = f"file:{path.name}", hashlib.sha256(data).hexdigest()
        if core.store.reported_digest(key) == digest:
            continue
        try:
            version = str(json.loads(data).get("version", ""))
        except (ValueError, AttributeError):
            version = ""
        core.store.outbox_append("indicator_set_imported", {
            "site": config.site.id, "file": path.name, "version": version, "sha256": digest}, event.at)
        core.store.mark_reported(key, digest, event.at)
        queued += 1
    return queued


def _digest(raw: dict) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def audit_anchored(core: CoreContext, event: AuditAnchored) -> list[Command]:
    # The event row itself is the local anchor (`audit verify` reads it); the outbox row
    # puts a copy where cutting both files on this board cannot reach.
    core.store.outbox_append("audit_anchor", {"site": core.config.site.id, "seq": event.seq,
                                              "hash": event.hash, "at": iso(event.at)}, event.at)
    return []


def evidence_manifest_written(core: CoreContext, event: EvidenceManifestWritten) -> list[Command]:
    # As the audit log's head: the evidence chain's newest digest kept at the RAU, so one who
    # removes the newest manifests or rewrites the chain on this board is found out.
    core.store.outbox_append("evidence_head", {"site": core.config.site.id, "sequence": event.sequence,
                                               "crossing_id": event.crossing_id, "sha256": event.sha256,
                                               "at": iso(event.at)}, event.at)
    return []


HANDLERS: dict[type[EventBase], Handler] = {
    LocalIndicatorSaved: local_indicator_saved,
    IndicatorFilesChanged: indicator_files_changed,
    AuditAnchored: audit_anchored,
    EvidenceManifestWritten: evidence_manifest_written,
}
