"""Evidence on demand in the RAU console (docs/central.md, "The RAU's console"): an analyst
asks a site for a crossing's evidence, the page shows each file's state as the hub takes
it in (requested, uploading n/m, verified, refused, purged, missing), verified files can
be viewed and downloaded, and the crossing exports as one archive for prosecutors.

The request is an `evidence_request` command queued in the ledger's `commands` table, as
a raise is; the hub's lease holder publishes it. Every request, download and export is
in the audit log; every refusal too, with a counter.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge_agent.central.console.pages import console_of, guard, not_found, refused, render_page, session_of, to_login
from edge_agent.central.console.roles import allowed
from edge_agent.central.ledger import Ledger
from edge_agent.evidence.export import build_export

log = logging.getLogger(__name__)

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Shown in the browser as they are; anything else is a download (never rendered as HTML).
_INLINE = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".txt": "text/plain",
           ".hex": "text/plain", ".json": "text/plain", ".xml": "text/plain"}


def _file_view(row: dict[str, Any]) -> dict[str, Any]:
    state = row["state"]
    label = state
    if state in ("requested", "uploading") and row["chunks"]:
        label = f"uploading {row['have']}/{row['chunks']}" if row["have"] else "requested"
    return {**row, "label": label}


def _gather(ledger: Ledger, site: str, crossing_id: str) -> tuple[bool, list[dict[str, Any]], list[dict[str, Any]]]:
    known = bool(ledger.crossing_events(site, crossing_id)) or bool(ledger.evidence_requests(site, crossing_id))
    return known, ledger.evidence_requests(site, crossing_id), [
        _file_view(r) for r in ledger.evidence_files(site, crossing_id)]


async def evidence_page(request: Request, status_code: int = 200) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    site, crossing_id = request.path_params["site"], request.path_params["crossing"]
    known, requests, files = await console_of(request).read(lambda ledger: _gather(ledger, site, crossing_id))
    if not known:
        return not_found(request, f"no crossing {crossing_id!r} of {site!r} in the ledger")
    return render_page(request, "evidence.html", {
        "site": site, "crossing_id": crossing_id, "requests": requests, "files": files,
        "verified": sum(f["state"] == "verified" for f in files)}, status_code=status_code)


async def request_evidence(request: Request) -> Response:
    site, crossing_id = request.path_params["site"], request.path_params["crossing"]
    details = {"site": site, "crossing": crossing_id}
    checked = await guard(request, "evidence_request", details)
    if isinstance(checked, Response):
        return checked
    session, _ = checked
    console = console_of(request)
    if not await console.read(lambda ledger: bool(ledger.crossing_events(site, crossing_id))):
        console.record(session, "evidence_request", "rejected", "unknown crossing", details)
        return not_found(request, f"no crossing {crossing_id!r} of {site!r} in the ledger")
    request_id = await console.queue_command(
        site, session, "evidence_request", {"crossing_id": crossing_id}, f"RAU ({session.user.username})",
        also=lambda ledger, command_id: ledger.add_evidence_request(command_id, site, crossing_id,
                                                                    session.user.username))
    console.record(session, "evidence_request", "done", "", {**details, "request": request_id})
    log.info("rau_evidence_requested site=%s crossing=%s request=%s user=%s", site, crossing_id, request_id,
             session.user.username)
    return RedirectResponse(f"/crossings/{site}/{crossing_id}/evidence", status_code=303)


async def evidence_file(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    site, crossing_id, digest = (request.path_params[k] for k in ("site", "crossing", "sha256"))
    details = {"site": site, "crossing": crossing_id, "sha256": digest}
    if not allowed(session.user.role, "evidence_view"):
        return refused(request, session, "evidence_view", "evidence files are for analysts and the monitoring office",
                       403, details)
    if not _DIGEST.match(digest):
        return refused(request, session, "evidence_view", "not a SHA-256 digest", 400, details)
    console = console_of(request)

    def fetch(ledger: Ledger) -> tuple[dict[str, Any] | None, bytes]:
        rows = [r for r in ledger.evidence_files(site, crossing_id) if r["sha256"] == digest]
        if not rows or rows[0]["state"] != "verified":
            return (rows[0] if rows else None), b""
        return rows[0], ledger.evidence_content(site, digest)

    row, content = await console.read(fetch)
    if row is None or row["state"] != "verified":
        # Only a file whose digest the hub checked is ever shown.
        return refused(request, session, "evidence_view", "no verified file with this digest in the crossing", 404,
                       details)
    console.record(session, "evidence_view", "done", "", {**details, "path": row["path"]})
    name = row["path"].rsplit("/", 1)[-1]
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    inline = request.query_params.get("view") == "1" and suffix in _INLINE
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return Response(content, media_type=_INLINE[suffix] if inline else "application/octet-stream", headers={
        "content-disposition": f'{"inline" if inline else "attachment"}; filename="{safe_name}"',
        "x-content-sha256": digest})


async def evidence_export(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    site, crossing_id = request.path_params["site"], request.path_params["crossing"]
    details = {"site": site, "crossing": crossing_id}
    if not allowed(session.user.role, "evidence_export"):
        return refused(request, session, "evidence_export", "exports are for analysts", 403, details)
    console = console_of(request)

    def gather(ledger: Ledger) -> tuple[dict[str, Any] | None, dict[str, bytes], dict[str, str]]:
        proofs = [r for r in ledger.evidence_requests(site, crossing_id) if r["proof"]]
        files = ledger.evidence_files(site, crossing_id)
        states = {f["sha256"]: f["state"] for f in files}
        content = {f["sha256"]: ledger.evidence_content(site, f["sha256"]) for f in files if f["state"] == "verified"}
        return (json.loads(proofs[0]["proof"]) if proofs else None), content, states

    proof, content, states = await console.read(gather)
    if proof is None:
        return refused(request, session, "evidence_export", "the site has not sent this crossing's evidence yet", 409,
                       details)
    archive = build_export(site=site, crossing_id=crossing_id, chain=proof["chain"], head=proof["head"],
                           anchors=proof.get("anchors"), files=content, states=states,
                           exported_by=session.user.username)
    console.record(session, "evidence_export", "done", "", {**details, "files": len(content),
                                                             "head": proof["head"]["sha256"]})
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"evidence_{site}_{crossing_id}.zip")
    return Response(archive, media_type="application/zip",
                    headers={"content-disposition": f'attachment; filename="{name}"'})
