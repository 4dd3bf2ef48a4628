"""`edge-agent storage ...`: what the storage holds, holds on crossings, purges.

    edge-agent storage status --config SITE.toml [--json]
    edge-agent storage hold CROSSING --reason TEXT --by NAME --config SITE.toml
    edge-agent storage release CROSSING --reason TEXT --by NAME --config SITE.toml
    edge-agent storage purge --config SITE.toml [--dry-run]

`hold` and `release` write one row to agent.db beside the running agent: the core is the
only writer of everything else, and this short transaction is serialised with its
commits by SQLite (the busy timeout of 10 s is far longer than any commit of the core,
which are milliseconds), so the core neither waits long nor sees a half-written hold.
Each is appended to the console's audit log (<data_dir>/console.db), as `console` user
commands are.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime
from pathlib import Path

import click

from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import ConfigError, StoreError

_config_option = click.option("--config", "config_path", required=True,
                              type=click.Path(dir_okay=False, path_type=Path), help="The site file.")


def _config(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except ConfigError as err:
        click.echo(f"{err.source}: configuration refused:", err=True)
        for problem in err.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)


@click.group()
def storage() -> None:
    """Retention and holds: use per class, holds, the media budget, purges."""


@storage.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path: Path, as_json: bool) -> None:
    """Use per class, holds, the media budget and the next purge."""
    from edge_agent.evidence import evidence_root
    from edge_agent.evidence.manifest import EvidenceStore
    from edge_agent.models import utcnow
    from edge_agent.reload import running_agent
    from edge_agent.storage.retention import Periods
    from edge_agent.storage.worker import RetentionWorker, media_cap_bytes, read_status
    from edge_agent.store import Store

    config = _config(config_path)
    data_dir = Path(config.site.data_dir)
    retention = config.retention
    root = evidence_root(data_dir)
    try:
        store = Store.reader(data_dir / "agent.db")
    except StoreError as err:
        click.echo(str(err), err=True)
        sys.exit(1)
    try:
        held, holds, counts = store.held_count(), store.holds(20), store.counts()
    finally:
        store.close()
    # A dry run is a read: it lists and plans, deletes nothing, writes no manifest.
    plan = RetentionWorker(EvidenceStore(root), data_dir / "agent.db", Periods.of(retention)).run_once(
        now=utcnow(), dry_run=True)
    cap = media_cap_bytes(retention.evidence_max_mb, retention.evidence_max_pct, root)
    media = plan.media_bytes
    worker = read_status(data_dir)
    report = {
        "data_dir": str(data_dir),
        "disk_free_bytes": shutil.disk_usage(data_dir).free,
        "bytes_by_class": {**dict(plan.bytes_by_class),
                           "records": sum(p.stat().st_size for p in data_dir.glob("agent.db*") if p.is_file())},
        "files_by_class": dict(plan.files_by_class),
        "rows": counts,
        "periods_days": {"media": retention.media_days, "raw": retention.raw_days,
                         "records": retention.records_days, "flagged": retention.flagged_days},
        "held_crossings": held,
        "holds": holds,
        "budget": {"cap_bytes": cap, "media_bytes": media, "high_water_pct": retention.high_water_pct,
                   "used_pct": round(100.0 * media / cap, 1) if cap else 0.0,
                   "state": worker.get("budget", {}).get("state", "")},
        "due_now": dict(plan.purged_files),
        "agent_running": running_agent(data_dir) is not None,
        "next_purge": worker.get("next_run", ""),
        "last_purge": worker.get("last", {}),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    mb = 2**20
    click.echo(f"data directory {data_dir}: {report['disk_free_bytes'] / mb:.0f} MB free")
    click.echo("use per class  " + "  ".join(f"{k} {v / mb:.1f} MB"
                                             for k, v in sorted(report["bytes_by_class"].items())))
    click.echo("periods (days) " + "  ".join(f"{k} {v}" for k, v in report["periods_days"].items()))
    budget = report["budget"]
    click.echo(f"media budget   {budget['media_bytes'] / mb:.1f} of {cap / mb:.0f} MB ({budget['used_pct']}%), "
               f"high water {retention.high_water_pct:.0f}%, state {budget['state'] or 'unknown (agent not running)'}")
    click.echo(f"held crossings {held}")
    for row in holds:
        when = row["released_at"] or row["placed_at"]
        who = row["released_by"] or row["placed_by"]
        why = row["released_reason"] or row["placed_reason"]
        click.echo(f"  {row['crossing_id']:<28} {row['state']:<9} {when[:19]}  {who}: {why}")
    click.echo("due now        " + (", ".join(f"{k} {v}" for k, v in sorted(report["due_now"].items())) or "nothing"))
    click.echo(f"next purge     {report['next_purge'] or 'when the agent runs (or: edge-agent storage purge)'}")


@storage.command()
@_config_option
@click.option("--reason", required=True, help="Why (kept with the hold and in the audit log).")
@click.option("--by", "by", required=True, help="Who decided (an officer, the head of office, the RAU).")
@click.argument("crossing")
def hold(config_path: Path, reason: str, by: str, crossing: str) -> None:
    """Keep every file and row of a crossing until it is released."""
    _hold_or_release(config_path, crossing, reason, by, release=False)


@storage.command()
@_config_option
@click.option("--reason", required=True, help="Why (kept with the release and in the audit log).")
@click.option("--by", "by", required=True, help="Who decided.")
@click.argument("crossing")
def release(config_path: Path, reason: str, by: str, crossing: str) -> None:
    """Release a crossing's hold (manual or automatic): its periods run from now."""
    _hold_or_release(config_path, crossing, reason, by, release=True)


def _hold_or_release(config_path: Path, crossing: str, reason: str, by: str, *, release: bool) -> None:
    from edge_agent.models import utcnow
    from edge_agent.ownership import give_to_directory_owner
    from edge_agent.store import Store
    from edge_agent.web.audit import AuditLog

    config = _config(config_path)
    data_dir = Path(config.site.data_dir)
    if not reason.strip() or not by.strip():
        raise click.UsageError("--reason and --by must say something")
    db = data_dir / "agent.db"
    if not db.exists():
        click.echo(f"no database at {db}", err=True)
        sys.exit(1)
    store = Store.open(db)
    try:
        if store.crossing_lane(crossing) is None:
            click.echo(f"no crossing {crossing} in {db}", err=True)
            sys.exit(1)
        flagged = store.flagged_reasons(crossing)
        held = store.on_hold(crossing)
        if release and not held:
            click.echo(f"crossing {crossing} is not on hold", err=True)
            sys.exit(1)
        with store.transaction():
            if release:
                store.release_hold(crossing, by, reason, utcnow())
            else:
                store.place_hold(crossing, by, reason, utcnow())
    finally:
        store.close()
    audit_path = config.console.db_file or data_dir / "console.db"
    audit = AuditLog(audit_path)
    try:
        audit.append(by, "(cli)", "storage_release" if release else "storage_hold", "done", reason,
                     {"crossing": crossing, "automatic": flagged, "was_held": held})
    finally:
        audit.close()
    give_to_directory_owner(audit_path)
    what = "released" if release else "on hold"
    click.echo(f"crossing {crossing} {what} (by {by}: {reason})"
               + (f"; held automatically for: {', '.join(flagged)}" if flagged and not release else ""))


@storage.command()
@_config_option
@click.option("--dry-run", is_flag=True, help="Print what would go and why; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def purge(config_path: Path, dry_run: bool, as_json: bool) -> None:
    """Run one purge now (the running agent's, or here when none runs); --dry-run lists it."""
    from edge_agent.evidence import evidence_root
    from edge_agent.evidence.manifest import EvidenceStore
    from edge_agent.models import utcnow
    from edge_agent.reload import running_agent
    from edge_agent.storage.records import RecordsPurger, due_crossings
    from edge_agent.storage.retention import Periods
    from edge_agent.storage.worker import RetentionWorker, has_files, request_purge
    from edge_agent.store import Store

    config = _config(config_path)
    data_dir = Path(config.site.data_dir)
    root = evidence_root(data_dir)
    periods = Periods.of(config.retention)
    now = utcnow()
    db = data_dir / "agent.db"
    if not db.exists():
        click.echo(f"no database at {db}", err=True)
        sys.exit(1)
    if dry_run:
        report = RetentionWorker(EvidenceStore(root), db, periods).run_once(now=now, dry_run=True)
        store = Store.reader(db)
        try:
            # The rows of crossings whose files go in this run would be due too, once they are gone.
            going = {p.crossing_id for p in report.purges}
            rows = due_crossings(store, periods, now, lambda cid: cid not in going and has_files(root, cid))
        finally:
            store.close()
        _print_plan(report, rows, now, as_json)
        return
    pid = running_agent(data_dir)
    if pid is not None:
        # Two writers of the manifest chain would fork it: the running agent's worker purges.
        request_purge(data_dir)
        click.echo(f"the running agent (pid {pid}) purges now: its worker looks for the request every few "
                   "seconds; `edge-agent storage status` shows the result")
        return
    store = Store.open(db)
    try:
        report = RetentionWorker(EvidenceStore(root), db, periods, pause_s=0).run_once(now=now)
        crossings = RecordsPurger(store, periods, has_files=lambda cid: has_files(root, cid)).run_pass(now)
    finally:
        store.close()
    _print_plan(report, None, now, as_json, rows_deleted=crossings)


def _print_plan(report, rows, now: datetime, as_json: bool, rows_deleted: int | None = None) -> None:
    if as_json:
        out = {**report.summary(), "files": [p.__dict__ for p in report.purges]}
        if rows is not None:
            out["records_due"] = [{"crossing": s.id, "lane": s.lane, "class": "flagged" if s.flagged else "records",
                                   "since": s.since.isoformat() if s.since else ""} for s in rows]
        if rows_deleted is not None:
            out["rows_deleted"] = rows_deleted
        click.echo(json.dumps(out, indent=2, default=str))
        return
    verb = "would go" if report.dry_run else "went"
    for p in report.purges:
        click.echo(f"{p.path}  class={p.data_class} reason={p.reason} bytes={p.size}")
    for state in rows or []:
        click.echo(f"records of crossing {state.id} (lane {state.lane})  class="
                   f"{'flagged' if state.flagged else 'records'} reason=period")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(report.purged_files.items())) or "no files"
    click.echo(f"{now.isoformat(timespec='seconds')}: {len(report.purges)} file(s) {verb} ({summary}, "
               f"{sum(p.size for p in report.purges)} bytes)"
               + (f"; records of {len(rows)} crossing(s) {verb}" if rows is not None else "")
               + (f"; {rows_deleted} database row(s) deleted" if rows_deleted is not None else ""))
