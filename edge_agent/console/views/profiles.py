"""The local risk analyst's editor of local indicators."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import (
    RedirectResponse,
    Response,
)

from edge_agent.console import forms
from edge_agent.console.pages import (
    Console,
    console_of,
    guard,
    render_page,
    session_of,
    to_login,
)
from edge_agent.local_rules.local_set import local_set_path, read_local_set
from edge_agent.models import (
    LocalIndicatorSaved,
)


def _local_indicators(console: Console) -> list[dict[str, Any]]:
    try:
        return read_local_set(local_set_path(console.data_dir)).get("indicators", [])
    except (OSError, ValueError):
        return []


def _rules_in_force(console: Console) -> list[dict[str, Any]]:
    rules = getattr(getattr(console.agent, "assessor", None), "rules", None)
    out = []
    for ind in getattr(rules, "indicators", ()):
        out.append({"id": ind.id, "version": ind.version, "level": ind.level, "title": ind.title,
                    "status": ind.status, "channels": ", ".join(_channels_of(ind))})
    return out


def _channels_of(indicator: Any) -> list[str]:
    channel = getattr(indicator, "channel", None)
    if channel:
        return [channel]
    return sorted(getattr(indicator, "shares_pct", None) or {})


async def profiles_page(request: Request, form: forms.Form | None = None, status_code: int = 200) -> Response:
    if session_of(request) is None:
        return to_login(request)
    console = console_of(request)
    rules = getattr(getattr(console.agent, "assessor", None), "rules", None)
    local = _local_indicators(console)
    editing = request.query_params.get("edit")
    if form is None and editing:
        found = next((i for i in local if i.get("id") == editing), None)
        if found is not None:
            form = forms.Form(raw={
                "id": found["id"], "title": found.get("title", ""), "when": json.dumps(found.get("when", {})),
                "channel": (found.get("action") or {}).get("channel", ""), "status": found.get("status", "active"),
                "instructions": found.get("instructions", ""), "priority": str(found.get("priority", 0))})
    return render_page(request, "profiles.html", {
        "local": local, "in_force": _rules_in_force(console),
        "set_version": getattr(rules, "version", ""),
        "channels": [c.code for c in console.agent.config.policy.channels],
        "form": form or forms.Form(), "done": request.query_params.get("done", "")}, status_code=status_code)


async def profiles_save(request: Request) -> Response:
    guarded = await guard(request, "profiles_edit")
    if isinstance(guarded, Response):
        return guarded
    session, data = guarded
    console = console_of(request)
    form = forms.indicator_form(data, console.agent.config.policy)
    details = {k: v for k, v in form.values.items() if k != "reason"}
    if not form.ok:
        console.record(session, "profiles_edit", "rejected", "; ".join(f"{k}: {v}" for k, v in form.errors.items()),
                       details)
        return await profiles_page(request, form=form, status_code=400)
    console.agent.post(LocalIndicatorSaved(indicator=forms.indicator_json(form.values), user=session.user.username,
                                           reason=form.values["reason"], source="console"))
    console.record(session, "profiles_edit", "done", form.values["reason"], details)
    return RedirectResponse("/profiles?done=saved", status_code=303)
