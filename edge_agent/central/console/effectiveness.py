"""Effectiveness across sites: pure functions of the ledger's rows (issue 16, item 4).

Per indicator and per level (local, regional, central), over a date range, optionally one
site: the crossings hit, those controlled, those where a control found something, and the
hit rate (positives per control; `None`, shown as "unknown", where no control was
recorded: a 0 % would say the controls found nothing). Over time, the same per day or
ISO week (Monday first), by the time of the crossing's first hit. And each site's channel
mix against the administration's targets. The counting itself is `edge_agent.hit_rates`,
the one a site's console uses: a crossing counts once per indicator however often it was
re-assessed, and is positive when any of its control acts is.

    form = effectiveness_form(request.query_params, today=date.today())
    report = effectiveness(hits, outcomes, channel_rows, form.values, policy)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from edge_agent.central.console.forms import INDICATOR, SITE, Form
from edge_agent.config import PolicyConfig
from edge_agent.hit_rates import IndicatorStats, channel_rates, indicator_stats

BUCKETS = ("day", "week")
LEVELS = ("local", "regional", "central")
DEFAULT_DAYS = 28
MAX_DAYS = 366  # the widest range one page reads from the ledger


@dataclass(frozen=True)
class Counts:
    """Hits, controls and positives of one row of a table (an indicator, a level, a site, a bucket)."""

    key: str
    hits: int
    controls: int
    positives: int
    hit_rate: float | None  # None: unknown, no control was recorded
    level: str = ""


@dataclass(frozen=True)
class ChannelMix:
    site: str  # "" for all the sites shown together
    total: int  # crossings assessed (a channel given)
    unassessed: int  # crossings that ended without a channel
    channels: list[dict[str, Any]]  # channel, count, actual_pct, expected_pct (hit_rates.channel_rates)
    random: dict[str, Any]  # selected, eligible, actual_pct, expected_pct


@dataclass(frozen=True)
class Effectiveness:
    indicators: list[Counts]
    levels: list[Counts]
    sites: list[Counts]
    over_time: list[Counts]  # key: the bucket's first day, ISO
    mix: list[ChannelMix] = field(default_factory=list)


def effectiveness_form(params: Mapping[str, Any], today: date) -> Form:
    """The page's filters (GET parameters): since and until (dates, both included), the
    bucket, one site and one indicator (for the table over time); empty: the defaults."""
    form = Form()
    v = form.values

    def text(name: str, max_len: int = 64) -> str:
        value = params.get(name, "")
        return value.strip()[:max_len + 1] if isinstance(value, str) else ""

    for name, default in (("since", today - timedelta(days=DEFAULT_DAYS - 1)), ("until", today)):
        typed = text(name, 20)
        v[name] = default
        if typed:
            try:
                v[name] = date.fromisoformat(typed)
            except ValueError:
                form.errors[name] = "a date, e.g. 2026-03-01"
    if "since" not in form.errors and "until" not in form.errors:
        if v["until"] < v["since"]:
            form.errors["until"] = "on or after the first day"
        elif (v["until"] - v["since"]).days + 1 > MAX_DAYS:
            form.errors["since"] = f"at most {MAX_DAYS} days at a time"
    v["bucket"] = text("bucket", 10) or "week"
    if v["bucket"] not in BUCKETS:
        form.errors["bucket"] = "day or week"
    v["site"] = text("site")
    if v["site"] and not SITE.match(v["site"]):
        form.errors["site"] = "a site id"
    v["indicator"] = text("indicator")
    if v["indicator"] and not INDICATOR.match(v["indicator"]):
        form.errors["indicator"] = "an indicator's id: letters, digits, '_', '.', ':' or '-'"
    return form


def time_range(since: date, until: date) -> tuple[datetime, datetime]:
    """[first instant of `since`, first instant after `until`) in UTC, the ledger's bounds."""
    return datetime.combine(since, time(), UTC), datetime.combine(until + timedelta(days=1), time(), UTC)


def bucket_of(when: datetime, bucket: str) -> date:
    day = when.astimezone(UTC).date()
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def buckets(since: date, until: date, bucket: str) -> list[date]:
    """Every bucket the range touches, so that a quiet week shows as one, not as a gap."""
    step = timedelta(days=7 if bucket == "week" else 1)
    first = bucket_of(datetime.combine(since, time(), UTC), bucket)
    return [first + step * i for i in range((until - first) // step + 1)]


def _counts(stats: IndicatorStats, key: str | None = None) -> Counts:
    return Counts(key if key is not None else stats.indicator_id, stats.hits, stats.controls, stats.positives,
                  stats.hit_rate, stats.level)


def _keyed(hits: Iterable[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """The hits with `indicator_id` replaced by what to group on, so that
    `indicator_stats` counts per level, per site or per bucket exactly as per indicator
    (a crossing two indicators of one level hit counts once for that level)."""
    return [{**h, "indicator_id": h[key]} for h in hits]


def effectiveness(hits: Iterable[Mapping[str, Any]], outcomes: Iterable[Mapping[str, Any]],
                  channel_rows: Iterable[Mapping[str, Any]], query: Mapping[str, Any],
                  policy: PolicyConfig) -> Effectiveness:
    """The page's tables from `Ledger.hit_crossings`, `control_outcomes` and `channel_counts`.

    `query` is the form's values (since, until, bucket, indicator); `policy` carries the
    channels and the targets (expected_share_pct, random_share_pct)."""
    # A crossing's id is the site's own: the site makes it one with the crossing.
    hit_rows = [{**h, "crossing_id": f"{h['site']}/{h['crossing_id']}",
                 "bucket": bucket_of(h["made_at"], query["bucket"]).isoformat()} for h in hits]
    acts = [{"crossing_id": f"{o['site']}/{o['crossing_id']}", "result": o["result"]} for o in outcomes]
    acts = list(acts)
    indicators = [_counts(s) for s in indicator_stats(hit_rows, acts)]
    by_level = {s.indicator_id: _counts(s) for s in indicator_stats(_keyed(hit_rows, "level"), acts)}
    levels = [by_level.get(level) or Counts(level, 0, 0, 0, None) for level in LEVELS]
    levels += [c for k, c in sorted(by_level.items()) if k not in LEVELS]
    sites = sorted((_counts(s) for s in indicator_stats(_keyed(hit_rows, "site"), acts)), key=lambda c: c.key)
    chosen = [h for h in hit_rows if not query.get("indicator") or h["indicator_id"] == query["indicator"]]
    by_bucket = {s.indicator_id: _counts(s) for s in indicator_stats(_keyed(chosen, "bucket"), acts)}
    over_time = [by_bucket.get(b.isoformat()) or Counts(b.isoformat(), 0, 0, 0, None)
                 for b in buckets(query["since"], query["until"], query["bucket"])]
    return Effectiveness(indicators, levels, sites, [replace(c, level="") for c in over_time],
                         channel_mix(channel_rows, policy))


def channel_mix(rows: Iterable[Mapping[str, Any]], policy: PolicyConfig) -> list[ChannelMix]:
    """Each site's channel shares against the targets, and all of them together first."""
    rows = list(rows)
    sites = sorted({r["site"] for r in rows})
    out = []
    for site in ["", *sites] if len(sites) > 1 else sites:
        mine = [r for r in rows if not site or r["site"] == site]
        assessed = [r for r in mine if r.get("channel")]
        rates = channel_rates(assessed, policy)
        out.append(ChannelMix(site, rates["total"], sum(int(r["count"]) for r in mine if not r.get("channel")),
                              rates["channels"], rates["random"]))
    return out


def targets_policy(policy: PolicyConfig, channel_targets_pct: Mapping[str, float],
                   random_target_pct: float) -> PolicyConfig:
    """The console's code list with the administration's targets as the expected shares."""
    return policy.model_copy(update={"expected_share_pct": dict(channel_targets_pct),
                                     "random_share_pct": random_target_pct})


def rate_text(rate: float | None) -> str:
    """'12.5 %', or 'unknown' where no control was recorded (never 0 %)."""
    return "unknown" if rate is None else f"{100 * rate:.1f} %"


# ------------------------------------------------------------------ the tables as CSV

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP,
    "CSV Injection"); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """RFC 4180 CSV (quoted where a cell holds a comma, a quote or a line break; CRLF)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return out.getvalue()


COUNT_HEADER = ["hits", "controls", "positives", "hit_rate"]
TABLES = ("indicators", "levels", "sites", "over_time", "channel_mix")


def _count_row(c: Counts) -> list[Any]:
    return [c.hits, c.controls, c.positives, "unknown" if c.hit_rate is None else f"{c.hit_rate:.4f}"]


def table_csv(report: Effectiveness, table: str) -> str:
    """One of TABLES as CSV; the hit rate as a fraction with four decimals, or 'unknown'."""
    if table == "indicators":
        return csv_text(["indicator", "level", *COUNT_HEADER], ([c.key, c.level, *_count_row(c)]
                                                                 for c in report.indicators))
    if table in ("levels", "sites", "over_time"):
        first = {"levels": "level", "sites": "site", "over_time": "bucket_start"}[table]
        return csv_text([first, *COUNT_HEADER], ([c.key, *_count_row(c)] for c in getattr(report, table)))
    if table == "channel_mix":
        rows = []
        for mix in report.mix:
            for ch in mix.channels:
                rows.append([mix.site or "(all)", ch["channel"], ch["count"], f"{ch['actual_pct']:.2f}",
                             "" if ch["expected_pct"] is None else f"{ch['expected_pct']:.2f}"])
            rows.append([mix.site or "(all)", "random", mix.random["selected"], f"{mix.random['actual_pct']:.2f}",
                         f"{mix.random['expected_pct']:.2f}"])
        return csv_text(["site", "channel", "crossings", "actual_pct", "target_pct"], rows)
    raise ValueError(f"no table {table!r}: one of {', '.join(TABLES)}")
