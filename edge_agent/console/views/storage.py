"""The storage page: the storage's health, retention's last run, and holds on crossings.

The head of office places and releases holds here (a held crossing outlives its
retention periods, docs/storage.md "Holds"); the form becomes a `HoldChanged` event for
the core, the only writer of the site's database, and every act is audit-logged.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge_agent.console import forms
from edge_agent.console.pages import console_of, guard, render_page, session_of, to_login
from edge_agent.models import HoldChanged


async def storage_page(request: Request, errors: dict | None = None, status_code: int = 200) -> Response:
    if session_of(request) is None:
        return to_login(request)
    console = console_of(request)
    retention = console.agent.retention.health() if getattr(console.agent, "retention", None) else {}
    return render_page(request, "storage.html", {
        "storage": console.agent.storage_health(), "retention": retention,
        "held": console.store.held_count(), "holds": console.store.holds(50),
        "errors": errors or {}, "done": request.query_params.get("done", "")}, status_code=status_code)


async def hold_action(request: Request) -> Response:
    guarded = await guard(request, "storage_hold")
    if isinstance(guarded, Response):
        return guarded
    session, data = guarded
    console = console_of(request)
    form = forms.hold_form(data)
    crossing = form.values["crossing_id"]
    if form.ok and console.store.crossing_lane(crossing) is None:
        form.errors["crossing_id"] = "no such crossing on this site"
    if form.ok and form.values["action"] == "release" and not console.store.on_hold(crossing):
        form.errors["action"] = "this crossing is not on hold"
    if not form.ok:
        console.record(session, "storage_hold", "rejected", "; ".join(form.errors.values()), form.values)
        return await storage_page(request, errors=form.errors, status_code=400)
    console.agent.post(HoldChanged(crossing_id=crossing, action=form.values["action"], user=session.user.username,
                                   reason=form.values["reason"], source="console"))
    console.record(session, "storage_release" if form.values["action"] == "release" else "storage_hold", "done",
                   form.values["reason"], {"crossing": crossing})
    return RedirectResponse(f"/storage?done={form.values['action']}", status_code=303)
