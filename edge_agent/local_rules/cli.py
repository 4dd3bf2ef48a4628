"""Command line of the risk engine: `edge-agent assess` and `edge-agent indicators ...`.

Registered by edge_agent/cli.py as `assess` (assess_command) and `indicators`
(the group). Every command works from a site file (--config) or from indicator files
given directly (--indicators), so the RAU can try a set on a laptop.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from edge_agent.config import AgentConfig, PolicyConfig, load_config
from edge_agent.durable import replace_file
from edge_agent.errors import ConfigError, IndicatorError
from edge_agent.hit_rates import channel_rates, indicator_stats
from edge_agent.local_rules.engine import assess
from edge_agent.local_rules.indicators import (
    IndicatorSet,
    load_indicator_set,
    site_indicator_files,
)
from edge_agent.local_rules.local_set import checked_local_set, local_set_path, read_local_set, updated_local_set
from edge_agent.local_rules.normalize import normalize_plate
from edge_agent.models import Observations, PreArrival
from edge_agent.ownership import give_to_directory_owner
from edge_agent.reload import signal_reload

_config_option = click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Site file (TOML); gives the policy, time zone, data_dir and indicator files.",
)
_indicators_option = click.option(
    "--indicators", "indicator_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Indicator set file (repeatable); replaces the site's files.",
)


@click.command("assess")
@click.option("--prearrival", "prearrival_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pre-arrival record (JSON); leave out to assess a truck without one.")
@click.option("--weight", "weight_kg", type=float, help="Measured mass, kg.")
@click.option("--plate", help="Tractor plate read at the lane (default: the record's).")
@click.option("--trailer", help="Trailer plate read at the lane.")
@_indicators_option
@_config_option
@click.option("--now", "now_text", help="Assessment time, ISO 8601 with zone (default: now).")
@click.option("--replay", "crossing_id", metavar="CROSSING",
              help="Assess a stored crossing again with the indicator set and policy of its time (needs --config);"
                   " exit 1 when the verdict differs.")
def assess_command(prearrival_path, weight_kg, plate, trailer, indicator_paths, config_path, now_text,
                   crossing_id) -> None:
    """Assess one pre-arrival record and print the verdict as JSON; or replay a stored crossing."""
    config = _config(config_path)
    if crossing_id:
        _replay(config, crossing_id)
        return
    rules = _rules(config, indicator_paths)
    policy = config.policy if config else PolicyConfig()
    site_tz = config.site.timezone if config else "UTC"
    record = None
    if prearrival_path is not None:
        try:
            record = PreArrival.model_validate_json(prearrival_path.read_bytes())
        except ValueError as err:
            raise click.ClickException(f"{prearrival_path}: not a valid pre-arrival record: {err}") from err
    if record is None and not plate:
        raise click.UsageError("give --prearrival, --plate, or both")
    now = _now(now_text)
    read = plate or (record.tractor_plate if record else "")
    match = "none"
    if record is not None:
        match = "exact" if normalize_plate(read) == normalize_plate(record.tractor_plate) else "manual"
    seen = Observations(
        lane="cli", tractor_plate=read, trailer_plate=trailer or "", plate_confidence=1.0,
        plate_match=match, measured_kg=weight_kg, at=now,
    )
    verdict = assess(record, seen, rules, policy, now=now, site_tz=site_tz)
    out = {"reference": record.reference if record else "", **verdict.to_json()}
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))


def _replay(config: AgentConfig | None, crossing_id: str) -> None:
    from edge_agent.core.replay import ReplayError, replay
    from edge_agent.errors import StoreError

    if config is None:
        raise click.UsageError("--replay needs --config SITE.toml (the site's database and archive)")
    try:
        result = replay(config, Path(config.site.data_dir), crossing_id)
    except (ReplayError, StoreError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    if not result.same:
        raise SystemExit(1)


@click.group("indicators")
def indicators() -> None:
    """Risk indicators: list, show, import, add-local, stats."""


@indicators.command("list")
@_indicators_option
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(indicator_paths, config_path, as_json) -> None:
    """List the indicators in force at the site (or in the given files)."""
    config = _config(config_path)
    rules = _rules(config, indicator_paths)
    rows = [
        {"id": i.id, "version": i.version, "level": i.level, "status": i.status,
         "channel": i.channel or "/".join(f"{c}:{p:g}%" for c, p in (i.shares_pct or {}).items()),
         "priority": i.priority, "title": i.title}
        for i in sorted(rules.indicators, key=lambda i: (i.level, i.id))
    ]
    if as_json:
        click.echo(json.dumps({"version": rules.version, "indicators": rows}, indent=2, ensure_ascii=False))
        return
    expires = rules.expires_at.isoformat() if rules.expires_at else "never"
    click.echo(f"set {rules.version or '(none)'}: {len(rows)} indicators, {len(rules.lists)} lists, expires {expires}")
    for r in rows:
        click.echo(f"{r['id']:<24} v{r['version']:<3} {r['level']:<8} {r['status']:<8} {r['channel']:<10} {r['title']}")


@indicators.command("show")
@click.argument("indicator_id")
@_indicators_option
@_config_option
def show_command(indicator_id, indicator_paths, config_path) -> None:
    """Print one indicator as JSON."""
    rules = _rules(_config(config_path), indicator_paths)
    indicator = rules.get(indicator_id)
    if indicator is None:
        raise click.ClickException(f"no indicator {indicator_id!r} in set {rules.version!r}")
    click.echo(json.dumps(indicator.to_json(), indent=2, ensure_ascii=False))


@indicators.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Site file (TOML).")
def import_command(path, config_path) -> None:
    """Validate an indicator set and install it into <data_dir>/indicators/.

    An invalid set is refused with every reason and the installed sets stay as they are.
    """
    config = _config(config_path)
    folder = Path(config.site.data_dir) / "indicators"
    target = folder / path.name
    channels = [c.code for c in config.policy.channels]
    try:
        new = load_indicator_set(path, channels=channels)
        others = [p for p in site_indicator_files(config.rules.indicator_files, config.site.data_dir) if p != target]
        IndicatorSet.merge(*(load_indicator_set(p) for p in others), new)
    except IndicatorError as err:
        raise click.ClickException("refused, the installed sets are unchanged:\n" + _problems(err)) from err
    folder.mkdir(parents=True, exist_ok=True)
    replace_file(target, path.read_bytes())
    give_to_directory_owner(folder)
    note = f" ({len(new.rejected)} indicators rejected, partial set)" if new.rejected else ""
    click.echo(f"imported {new.version}: {len(new)} indicators, {len(new.lists)} lists -> {target}{note}")
    click.echo(signal_reload(Path(config.site.data_dir)))


@indicators.command("add-local")
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Site file (TOML).")
@click.option("--file", "indicator_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The indicator as JSON (instead of the options below).")
@click.option("--id", "indicator_id", help="Indicator id, e.g. L-FRUIT-07.")
@click.option("--title", default="")
@click.option("--when", "when_json",
              help='Condition as JSON, e.g. {"field":"items.hs_code","op":"prefix","value":"0805"}')
@click.option("--channel", help="Channel code of the action.")
@click.option("--instructions", default="", help="Plain-language instructions for the officer.")
@click.option("--priority", type=int, default=0)
@click.option("--author", default="", help="Who wrote it (the local risk analyst).")
def add_local_command(config_path, indicator_path, indicator_id, title, when_json, channel, instructions,
                      priority, author) -> None:
    """Write (or replace, with a new version) a local indicator in <data_dir>/indicators/local.json.

    The running agent is told (SIGHUP): it takes the indicator at once and queues it for
    the RAU; an agent that is not running does both when it starts.
    """
    config = _config(config_path)
    if indicator_path is not None:
        try:
            raw = json.loads(indicator_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise click.ClickException(f"{indicator_path}: not valid JSON: {err}") from err
    else:
        if not (indicator_id and when_json and channel):
            raise click.UsageError("give --file, or --id, --when and --channel")
        try:
            when = json.loads(when_json)
        except ValueError as err:
            raise click.UsageError(f"--when is not valid JSON: {err}") from err
        raw = {"id": indicator_id, "level": "local", "title": title, "when": when,
               "action": {"channel": channel}, "priority": priority, "instructions": instructions,
               "author": author, "owner": config.site.id}
    if not isinstance(raw, dict) or raw.get("level", "local") != "local":
        raise click.ClickException("a local indicator must be an object with level 'local'")
    data_dir = Path(config.site.data_dir)
    local_path = local_set_path(data_dir)
    now = datetime.now(UTC)
    doc, raw = updated_local_set(read_local_set(local_path), raw, config.site.id, raw.get("author", ""), now)
    from edge_agent.core.rules_in_force import rules_in_force

    try:
        checked_local_set(doc, local_path, config.rules.indicator_files, data_dir,
                          [c.code for c in config.policy.channels],
                          in_force=rules_in_force(config, data_dir, index=False))  # the RAU's bundles too
    except IndicatorError as err:
        raise click.ClickException("refused:\n" + _problems(err)) from err
    folder = local_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    replace_file(local_path, json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8"))
    give_to_directory_owner(folder)
    click.echo(f"saved {raw['id']} v{raw.get('version', 1)} in {local_path}")
    click.echo(signal_reload(data_dir))


@indicators.command("stats")
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Site file (TOML).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats_command(config_path, as_json) -> None:
    """Hits, controls, positive findings and hit rate per indicator; channel rates."""
    config = _config(config_path)
    from edge_agent.store import StoreView

    store = StoreView(Path(config.site.data_dir) / "agent.db")  # no database yet reads as no rows
    try:
        per_indicator = indicator_stats(store.all_hits(), store.all_control_results())
        rates = channel_rates(store.all_assessment_channels(), config.policy)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"indicators": [s.to_json() for s in per_indicator], "channels": rates}, indent=2))
        return
    click.echo(f"{'indicator':<24} {'level':<8} {'hits':>6} {'controls':>8} {'positive':>8} {'hit rate':>8}")
    for s in per_indicator:
        rate = f"{100 * s.hit_rate:.1f}%" if s.hit_rate is not None else "-"
        click.echo(f"{s.indicator_id:<24} {s.level:<8} {s.hits:>6} {s.controls:>8} {s.positives:>8} {rate:>8}")
    click.echo(f"\n{rates['total']} assessments")
    for r in rates["channels"]:
        expected = f"{r['expected_pct']:.1f}%" if r["expected_pct"] is not None else "-"
        click.echo(f"{r['channel']:<10} {r['count']:>6} {r['actual_pct']:>6.1f}%  expected {expected}")
    rnd = rates["random"]
    click.echo(f"random selection {rnd['actual_pct']:.1f}% of {rnd['eligible']} (expected {rnd['expected_pct']:.1f}%)")


# --------------------------------------------------------------------------- plumbing


def _config(path: Path | None) -> AgentConfig | None:
    if path is None:
        return None
    try:
        return load_config(path)
    except ConfigError as err:
        raise click.ClickException("\n".join([f"{err.source}:"] + err.problems)) from err


def _rules(config: AgentConfig | None, paths: tuple[Path, ...]) -> IndicatorSet:
    files = list(paths)
    if not files and config is not None:
        # What the agent runs with: the site's files, imported sets and the RAU's bundles.
        from edge_agent.core.rules_in_force import rules_in_force

        try:
            return rules_in_force(config, config.site.data_dir, index=False)
        except IndicatorError as err:
            raise click.ClickException(_problems(err)) from err
    if not files:
        raise click.UsageError("no indicator set: give --indicators FILE or --config SITE.toml")
    try:
        sets = [load_indicator_set(p) for p in files]
        return sets[0] if len(sets) == 1 else IndicatorSet.merge(*sets)
    except IndicatorError as err:
        raise click.ClickException(_problems(err)) from err


def _problems(err: IndicatorError) -> str:
    head = f"{err.source}:\n" if err.source else ""
    return head + "\n".join(f"  {ident}: {reason}" for ident, reason in err.problems)


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise click.UsageError(f"--now: not an ISO 8601 time: {text}") from err
    if value.tzinfo is None:
        raise click.UsageError("--now needs a time zone, e.g. 2026-05-01T10:00:00+00:00")
    return value
