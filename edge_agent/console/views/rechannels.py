"""Re-channel requests: the approvals of the head of office and the local risk analyst."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import (
    RedirectResponse,
    Response,
)

from edge_agent.console import forms
from edge_agent.console.pages import (
    console_of,
    guard,
    render_page,
    session_of,
    to_login,
)
from edge_agent.models import (
    RechannelDecided,
)


async def rechannels_page(request: Request, errors: dict | None = None, status_code: int = 200) -> Response:
    if session_of(request) is None:
        return to_login(request)
    console = console_of(request)
    return render_page(request, "rechannels.html", {
        "pending": console.store.pending_rechannels(),
        "history": console.store.decided_rechannels(limit=50),
        "errors": errors or {}, "done": request.query_params.get("done", "")}, status_code=status_code)


async def rechannel_decide(request: Request) -> Response:
    request_id = request.path_params["request_id"]
    guarded = await guard(request, "rechannel_decide", {"request": request_id})
    if isinstance(guarded, Response):
        return guarded
    session, data = guarded
    console = console_of(request)
    form = forms.decision_form(data)
    row = console.store.rechannel(request_id)
    role = session.user.role.value
    if row is None or row["status"] != "pending":
        form.errors["decision"] = "this request is not waiting for a decision"
    elif row["requested_by"] == session.user.username:
        form.errors["decision"] = "you asked for this re-channel: someone else must approve it"
    elif row["head_by" if role == "head_of_office" else "analyst_by"]:
        form.errors["decision"] = "your office has already decided on this request"
    details = {"request": request_id, **form.values}
    if not form.ok:
        console.record(session, "rechannel_decide", "rejected", "; ".join(form.errors.values()), details)
        return await rechannels_page(request, errors={request_id: form.errors}, status_code=400)
    console.agent.post(RechannelDecided(request_id=request_id, role=role, decision=form.values["decision"],
                                        user=session.user.username, reason=form.values["reason"], source="console"))
    console.record(session, "rechannel_decide", "done", form.values["reason"], details)
    return RedirectResponse("/rechannels?done=decision", status_code=303)
