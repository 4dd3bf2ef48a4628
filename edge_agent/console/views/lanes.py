"""The lanes: the overview, the lane page with its live stream, and the officers' lane actions."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import (
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from edge_agent.console import forms
from edge_agent.console.auth import Session
from edge_agent.console.pages import (
    console_of,
    guard,
    lane_or_none,
    not_found,
    render_page,
    session_of,
    to_login,
)
from edge_agent.console.readouts import crossing_snapshots, health_view
from edge_agent.lane import higher_channels
from edge_agent.models import (
    ControlActRecorded,
    ControlCompleted,
    ManualPlate,
    ManualRelease,
    RechannelRequested,
)


async def overview(request: Request) -> Response:
    if session_of(request) is None:
        return to_login(request)
    return render_page(request, "overview.html", {"cards": _cards(request)})


def _cards(request: Request) -> list[dict[str, Any]]:
    console = console_of(request)
    return [console.lane_view(lane) for lane in console.agent.core.lanes]


async def overview_live(request: Request) -> Response:
    if session_of(request) is None:
        return PlainTextResponse("log in first", status_code=401)
    console = console_of(request)
    template = console.templates.get_template("_cards.html")
    return _stream(request,
                   lambda: template.render(cards=_cards(request), health=health_view(console.agent, console.backlog())))


def _lane_context(request: Request, lane: str, errors: dict[str, dict[str, str]] | None = None,
                  values: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    console = console_of(request)
    view = console.lane_view(lane)
    policy = console.agent.config.policy
    recent = console.store.crossings(limit=10, lane=lane)
    acts = console.store.control_acts_of_lane(lane, limit=5)
    for act in acts:
        act["classification"] = json.loads(act["body"]).get("classification", "")
    return {
        "view": view, "lane": lane, "errors": errors or {}, "values": values or {},
        "recent": recent, "acts": acts,
        "raise_to": higher_channels(view["channel"], policy),
        "snapshots": crossing_snapshots(console.evidence_dir, view["crossing"]),
        "threshold_eur": policy.seizure_criminal_threshold_eur,
        "pending": console.store.pending_rechannels(lane),
        "control_types": forms.CONTROL_TYPES,
    }


async def lane_page(request: Request) -> Response:
    lane = lane_or_none(request)
    if session_of(request) is None:
        return to_login(request)
    if lane is None:
        return not_found(request)
    context = _lane_context(request, lane)
    context["done"] = request.query_params.get("done", "")
    return render_page(request, "lane.html", context)


async def lane_live(request: Request) -> Response:
    lane = lane_or_none(request)
    if session_of(request) is None:
        return PlainTextResponse("log in first", status_code=401)
    if lane is None:
        return PlainTextResponse("no such lane", status_code=404)
    console = console_of(request)
    template = console.templates.get_template("_lane_status.html")
    return _stream(request, lambda: template.render(
        view=console.lane_view(lane),
        health=health_view(console.agent, console.backlog())))


def _stream(request: Request, render) -> StreamingResponse:
    """Server-sent events (HTML Living Standard, 9.2): the panel's HTML whenever it changes."""
    console = console_of(request)

    async def events():
        last, last_sent = None, 0.0
        yield "retry: 2000\n\n"
        while not console.closing.is_set():
            html = render()
            now = time.monotonic()
            if html != last:
                last, last_sent = html, now
                yield "event: panel\n" + "".join(f"data: {line}\n" for line in html.splitlines()) + "\n"
            elif now - last_sent > 15:
                last_sent = now
                yield ": keep-alive\n\n"  # proxies drop idle streams
            if await request.is_disconnected():
                break
            await asyncio.sleep(console.config.live_interval_s)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _current(request: Request, lane: str) -> Any:
    return console_of(request).agent.core.lanes[lane]


def _invalid(request: Request, session: Session, action: str, lane: str, form: forms.Form,
             details: dict[str, Any]) -> Response:
    console = console_of(request)
    console.record(session, action, "rejected", "; ".join(f"{k}: {v}" for k, v in form.errors.items()), details)
    context = _lane_context(request, lane, errors={action: form.errors}, values={action: form.raw})
    return render_page(request, "lane.html", context, status_code=400)


def _same_truck(request: Request, lane: str, data: Any) -> str:
    """The form names the crossing the officer saw; refuse if the lane has moved on."""
    seen = str(data.get("crossing_id", ""))
    current = _current(request, lane).crossing_id
    if seen != current:
        return "the lane has moved on to another truck since the page was loaded; check and try again"
    return ""


def lane_action(action: str):
    """A lane's form action: an unknown lane is 404; the role, session and CSRF checks
    (`guard`) answer a refusal themselves; the handler gets the lane, session and form."""

    def wrap(handler):
        async def endpoint(request: Request) -> Response:
            lane = lane_or_none(request)
            if lane is None:
                return not_found(request)
            guarded = await guard(request, action, {"lane": lane})
            if isinstance(guarded, Response):
                return guarded
            session, data = guarded
            return await handler(request, lane, session, data)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


@lane_action("plate")
async def plate_action(request: Request, lane: str, session: Session, data: Any) -> Response:
    form = forms.plate_form(data)
    moved = _same_truck(request, lane, data)
    if moved:
        form.errors["crossing_id"] = moved
    details = {"lane": lane, "crossing": _current(request, lane).crossing_id, **form.values}
    if not form.ok:
        return _invalid(request, session, "plate", lane, form, details)
    v = form.values
    console_of(request).agent.post(ManualPlate(lane=lane, text=v["plate"], role=v["role"], user=session.user.username,
                                             reason=v["reason"], source="console"))
    console_of(request).record(session, "plate", "done", v["reason"], details)
    return RedirectResponse(f"/lanes/{lane}?done=plate", status_code=303)


@lane_action("release")
async def release_action(request: Request, lane: str, session: Session, data: Any) -> Response:
    form = forms.release_form(data)
    moved = _same_truck(request, lane, data)
    current = _current(request, lane)
    if moved:
        form.errors["crossing_id"] = moved
    elif not current.crossing_id:
        form.errors["crossing_id"] = "there is no truck in the lane"
    details = {"lane": lane, "crossing": current.crossing_id}
    if not form.ok:
        return _invalid(request, session, "release", lane, form, details)
    console_of(request).agent.post(ManualRelease(lane=lane, user=session.user.username, reason=form.values["reason"],
                                               source="console"))
    console_of(request).record(session, "release", "done", form.values["reason"], details)
    return RedirectResponse(f"/lanes/{lane}?done=release", status_code=303)


@lane_action("control_act")
async def control_act_action(request: Request, lane: str, session: Session, data: Any) -> Response:
    console = console_of(request)
    crossing = str(data.get("crossing_id", ""))
    form = forms.control_act_form(data, crossing_snapshots(console.evidence_dir, crossing))
    current = _current(request, lane)
    known = crossing == current.crossing_id or console.store.crossing_lane(crossing) == lane
    if not crossing or not known:
        form.errors["crossing_id"] = "choose a crossing of this lane"
    if form.values.get("then") in ("release", "refuse") and crossing != current.crossing_id:
        form.errors["then"] = "that truck is no longer in the lane"
    details = {"lane": lane, "crossing": crossing, **{k: v for k, v in form.values.items() if k != "reason"}}
    if not form.ok:
        return _invalid(request, session, "control_act", lane, form, details)
    v = form.values
    event = ControlActRecorded(
        lane=lane, crossing_id=crossing, control_type=v["control_type"], result=v["result"], findings=v["findings"],
        seizure=v["seizure"], seized_goods=v["seized_goods"], evaded_duties_eur=v["evaded_duties_eur"],
        penalties=v["penalties"], legal_basis=v["legal_basis"], measures=v["measures"], snapshots=v["snapshots"],
        user=session.user.username, reason=v["reason"], source="console")
    console.agent.post(event)
    if v["then"] in ("release", "refuse"):
        console.agent.post(ControlCompleted(lane=lane, user=session.user.username, outcome=v["then"],
                                            reason=v["reason"] or f"control act {event.id}", source="console"))
    console.record(session, "control_act", "done", v["reason"], {**details, "event": event.id})
    return RedirectResponse(f"/lanes/{lane}?done=control_act", status_code=303)


@lane_action("rechannel_request")
async def rechannel_action(request: Request, lane: str, session: Session, data: Any) -> Response:
    console = console_of(request)
    current = _current(request, lane)
    form = forms.rechannel_form(data, current.channel, console.agent.config.policy)
    moved = _same_truck(request, lane, data)
    if moved:
        form.errors["crossing_id"] = moved
    elif not current.crossing_id:
        form.errors["crossing_id"] = "there is no truck in the lane"
    details = {"lane": lane, "crossing": current.crossing_id, "from": current.channel, "to": form.values["channel"]}
    if not form.ok:
        return _invalid(request, session, "rechannel_request", lane, form, details)
    event = RechannelRequested(lane=lane, crossing_id=current.crossing_id, channel=form.values["channel"],
                               user=session.user.username, reason=form.values["reason"], source="console")
    console.agent.post(event)
    console.record(session, "rechannel_request", "done", form.values["reason"], {**details, "request": event.id})
    return RedirectResponse(f"/lanes/{lane}?done=rechannel_request", status_code=303)
