"""CCTV snapshots on demand in the RAU console (issue 16, item 1; docs/central.md, "The
RAU's console"): the site's page asks a lane's latest CCTV frame; the request goes as a
`cctv_snapshot` command through the `commands` table, the site's evidence uploader sends
the frame on the same upload channel as evidence (`cctv_snapshot` stream), the hub keeps
it in the ledger, and this page shows it. Requests are audit-logged; refusals are a 4xx,
an audit entry and a counter.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge_agent.central.console.pages import console_of, guard, not_found, render_page, session_of, to_login
from edge_agent.central.ledger import Ledger

log = logging.getLogger(__name__)


def _lanes(ledger: Ledger, site: str) -> list[str] | None:
    """The lanes the site reports in its health, None for a site the hub never heard of."""
    rows = [r for r in ledger.sites() if r["site"] == site]
    if not rows:
        return None
    lanes = rows[0]["health"].get("lanes")
    phases = lanes.get("phases") if isinstance(lanes, dict) else None
    return sorted(str(k) for k in phases) if isinstance(phases, dict) else []


async def cctv_page(request: Request, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    if session_of(request) is None:
        return to_login(request)
    site = request.path_params["site"]

    def gather(ledger: Ledger) -> tuple[list[str] | None, list[dict[str, Any]]]:
        return _lanes(ledger, site), ledger.cctv_snapshots(site)

    lanes, snapshots = await console_of(request).read(gather)
    if lanes is None:
        return not_found(request, f"no site {site!r} has reported to the hub")
    latest: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        if snap["state"] == "received":
            latest.setdefault(snap["lane"], snap)
    return render_page(request, "cctv.html", {"site": site, "lanes": lanes, "snapshots": snapshots,
                                              "latest": latest, "errors": errors or {}}, status_code=status_code)


async def request_snapshot(request: Request) -> Response:
    site = request.path_params["site"]
    checked = await guard(request, "cctv_snapshot", {"site": site})
    if isinstance(checked, Response):
        return checked
    session, form = checked
    console = console_of(request)
    lane = str(form.get("lane", ""))
    lanes = await console.read(lambda ledger: _lanes(ledger, site))
    if lanes is None:
        console.record(session, "cctv_snapshot", "rejected", "unknown site", {"site": site})
        return not_found(request, f"no site {site!r} has reported to the hub")
    if lane not in lanes:
        console.record(session, "cctv_snapshot", "rejected", "unknown lane", {"site": site, "lane": lane[:40]})
        return await cctv_page(request, {"lane": f"the site reports no lane {lane[:40]!r}"}, status_code=422)
    request_id = await console.queue_command(
        site, session, "cctv_snapshot", {"lane": lane}, f"RAU ({session.user.username})",
        also=lambda ledger, command_id: ledger.add_cctv_request(command_id, site, lane, session.user.username))
    console.record(session, "cctv_snapshot", "done", "", {"site": site, "lane": lane, "request": request_id})
    log.info("rau_cctv_requested site=%s lane=%s request=%s user=%s", site, lane, request_id, session.user.username)
    return RedirectResponse(f"/sites/{site}/cctv", status_code=303)


async def snapshot_image(request: Request) -> Response:
    if session_of(request) is None:
        return Response(status_code=401)
    site, request_id = request.path_params["site"], request.path_params["request"]
    data = await console_of(request).read(lambda ledger: ledger.cctv_snapshot_data(site, request_id))
    if data is None:
        return not_found(request, "no such snapshot")
    return Response(data, media_type="image/jpeg")
