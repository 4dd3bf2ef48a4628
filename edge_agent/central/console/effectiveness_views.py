"""The effectiveness page and its CSV exports (issue 16, item 4): every role may read them;
each export and each refused filter is audit-logged and counted."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from edge_agent.central.console.charts import Bar, bar_chart
from edge_agent.central.console.effectiveness import (
    BUCKETS,
    TABLES,
    Effectiveness,
    effectiveness,
    effectiveness_form,
    rate_text,
    table_csv,
    targets_policy,
    time_range,
)
from edge_agent.central.console.forms import Form
from edge_agent.central.console.pages import console_of, not_found, now, render_page, session_of, to_login
from edge_agent.central.ledger import Ledger

log = logging.getLogger(__name__)


async def _report(request: Request) -> tuple[Form, Effectiveness | None]:
    console = console_of(request)
    form = effectiveness_form(request.query_params, today=now().date())
    if not form.ok:
        return form, None
    v = form.values
    since, until = time_range(v["since"], v["until"])
    policy = targets_policy(console.settings.policy, console.settings.targets.channel_targets_pct,
                            console.settings.targets.random_target_pct)

    def gather(ledger: Ledger) -> Effectiveness:
        return effectiveness(ledger.hit_crossings(since, until, v["site"]),
                             ledger.control_outcomes(since, until, v["site"]),
                             ledger.channel_counts(since, until, v["site"]), v, policy)

    return form, await console.read(gather)


def _refuse_filters(request: Request, form: Form, what: str) -> None:
    console = console_of(request)
    console.record(session_of(request), what, "rejected", "; ".join(f"{k}: {e}" for k, e in form.errors.items()),
                   {k: str(request.query_params.get(k, ""))[:64] for k in form.errors})


def charts(report: Effectiveness, query: dict[str, Any]) -> dict[str, Any]:
    def rate_bars(rows, kind: str = "") -> list[Bar]:
        return [Bar(c.key, None if c.hit_rate is None else 100 * c.hit_rate,
                    note=f"{c.positives} of {c.controls} controls, {c.hits} hits", kind=kind) for c in rows]

    mixes = [(m.site or "all sites shown",
              bar_chart(f"Channel mix, {m.site or 'all sites shown'}",
                        [Bar(ch["channel"], ch["actual_pct"], ch["expected_pct"], f"{ch['count']} crossings",
                             ch["channel"]) for ch in m.channels]
                        + [Bar("random (of green)", m.random["actual_pct"], m.random["expected_pct"],
                               f"{m.random['selected']} of {m.random['eligible']}")], max_value=100))
             for m in report.mix]
    over = "all indicators" if not query.get("indicator") else query["indicator"]
    return {
        "levels": bar_chart("Hit rate per level", rate_bars(report.levels), max_value=100),
        "indicators": bar_chart("Hit rate per indicator", rate_bars(report.indicators[:30]), max_value=100),
        "over_time": bar_chart(f"Hit rate per {query['bucket']}, {over}", rate_bars(report.over_time),
                               max_value=100),
        "mix": mixes,
    }


async def effectiveness_page(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_login(request)
    form, report = await _report(request)
    if report is None:
        _refuse_filters(request, form, "effectiveness")
        return render_page(request, "effectiveness.html", {"form": dict(request.query_params), "errors": form.errors,
                                                           "report": None, "buckets": BUCKETS}, status_code=422)
    v = form.values
    query = "&".join(f"{k}={v[k]}" for k in ("since", "until", "bucket", "site", "indicator") if v[k])
    return render_page(request, "effectiveness.html", {
        "form": {**v, "since": v["since"].isoformat(), "until": v["until"].isoformat()}, "errors": {},
        "report": report, "charts": charts(report, v), "rate": rate_text, "buckets": BUCKETS, "query": query})


async def effectiveness_csv(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return Response("log in first", status_code=401)
    table = request.path_params["table"]
    if table not in TABLES:
        console_of(request).record(session, "effectiveness_export", "rejected", f"no table {table[:40]!r}")
        return not_found(request, f"no table {table!r}: one of {', '.join(TABLES)}")
    form, report = await _report(request)
    if report is None:
        _refuse_filters(request, form, "effectiveness_export")
        return Response("; ".join(f"{k}: {e}" for k, e in form.errors.items()), status_code=422,
                        media_type="text/plain")
    v = form.values
    console_of(request).record(session, "effectiveness_export", "done", "",
                               {"table": table, **{k: str(v[k]) for k in ("since", "until", "bucket", "site",
                                                                           "indicator")}})
    name = f"effectiveness-{table}-{v['since'].isoformat()}-{v['until'].isoformat()}.csv"
    return Response(table_csv(report, table), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
