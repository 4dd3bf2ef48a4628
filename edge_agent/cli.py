"""The `edge-agent` command.

Subcommands that pull in heavy modules (OpenCV, paho, the web stack) are imported only
when they are run, so `edge-agent --help` and `check-config` start in a blink on a Pi.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import signal
import sys
from pathlib import Path

import click

from edge_agent import __version__
from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import AgentError, ConfigError, StoreError
from edge_agent.lazy_commands import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "scale": ("edge_agent.devices.scale.cli:scale", "Weighbridge tools: live monitor, protocol probe."),
        "anpr": ("edge_agent.devices.anpr.cli:anpr", "Plate recognition tools."),
        "evidence": ("edge_agent.evidence.cli:evidence", "Evidence files: verify the hash chain."),
        "storage": ("edge_agent.storage.cli:storage", "Retention and holds: status, hold, release, purge."),
        "cctv": ("edge_agent.devices.cctv.cli:cctv", "CCTV tools: take a snapshot, watch a stream's health."),
        "console": ("edge_agent.console.cli:console", "The officers' lane console: serve, add users."),
        "audit": ("edge_agent.console.cli:audit", "The console's audit log: verify its hash chain."),
        "assess": ("edge_agent.local_rules.cli:assess_command", "Assess one pre-arrival record, print JSON."),
        "indicators": ("edge_agent.local_rules.cli:indicators", "Risk indicators: list, show, import, stats."),
        "central": ("edge_agent.central.cli:central", "The RAU's reference hub: serve, keys, bundles."),
        "sync": ("edge_agent.sync.cli:sync", "The link to the RAU: status of the outbox."),
        "gpio": ("edge_agent.devices.gate.cli:gpio", "Gate wiring: switch outputs, watch inputs."),
        "install": ("edge_agent.install:install", "Install the service on this host."),
        "simulate": ("edge_agent.simulators.cli:simulate", "Device simulators for technicians."),
    },
)
@click.version_option(__version__, prog_name="edge-agent")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Edge agent for a customs border crossing point.

    Reads the lane's weighbridge, plate cameras and CCTV, checks pre-arrival records
    against the risk indicators held on site, drives the barrier and lights, and syncs
    with the central Risk Analysis Unit over MQTT, offline too.

    \b
    Start here:
      edge-agent demo                      a whole crossing on simulators
      edge-agent check-config SITE.toml    validate a site file
      edge-agent run --config SITE.toml    the daemon
    """
    # A process that will not stop can be asked where each thread is: kill -USR1 <pid>
    # prints every thread's stack on stderr (the journal, under systemd).
    with contextlib.suppress(ValueError, OSError, AttributeError):  # no real stderr (embedded, tests)
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _load(path: Path, *, to_run: bool = True) -> AgentConfig:
    """The site file, checked against what running it needs (`to_run`), or its schema only
    (commands that only read what the agent wrote)."""
    from edge_agent.site import load_site

    try:
        return load_site(path) if to_run else load_config(path)
    except ConfigError as err:
        click.echo(f"{err.source}: configuration refused ({len(err.problems)} problem(s)):", err=True)
        for problem in err.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)


@main.command("check-config")
@click.argument("path", type=click.Path(path_type=Path))
def check_config(path: Path) -> None:
    """Validate a site file: every error with its key path and line; exit 2 if any."""
    config = _load(path)
    cams = sum(len(lane.cameras) for lane in config.lanes)
    click.echo(f"{path}: ok: site {config.site.id} ({config.site.region}), {len(config.lanes)} lane(s), "
               f"{cams} camera(s)")


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="The site file (TOML).")
def run(config_path: Path) -> None:
    """Run the agent as a daemon until SIGTERM (the gates go to the safe state first)."""
    from edge_agent.agent import Agent

    config = _load(config_path)
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    try:
        Agent(config).run_forever()
    except ConfigError as err:
        click.echo(f"cannot start: {err}", err=True)
        sys.exit(2)
    except AgentError as err:  # the store, an indicator file, a taken console port ...
        click.echo(f"cannot start: {err}", err=True)
        sys.exit(3)


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="The site file (gives the data directory).")
@click.option("--db", "db_path", type=click.Path(path_type=Path), help="The agent's database, instead of --config.")
@click.option("--last", default=10, show_default=True, help="How many recent crossings to list.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path: Path | None, db_path: Path | None, last: int, as_json: bool) -> None:
    """Lanes, last crossings and counts, read from the database."""
    from edge_agent.store import Store

    if db_path is None:
        if config_path is None:
            raise click.UsageError("give --config SITE.toml or --db PATH")
        db_path = _load(config_path, to_run=False).site.data_dir / "agent.db"
    try:
        store = Store.reader(db_path)
    except StoreError as err:
        click.echo(str(err), err=True)
        sys.exit(1)
    try:
        report = {
            "counts": store.counts(),
            "channels": store.channel_counts(),
            "lanes": store.crossings_per_lane(),
            "crossings": store.crossings(limit=last),
            "pending_prearrivals": store.pending_prearrival_count(),
        }
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    counts = report["counts"]
    pending = report["pending_prearrivals"]
    click.echo(f"database {db_path}")
    click.echo(
        f"crossings {counts['crossings']}  assessments {counts['assessments']}  hits {counts['hits']}  "
        f"rejected inputs {counts['rejections']}  outbox backlog {counts['outbox']}  pending pre-arrivals "
        f"{pending}"
    )
    click.echo("channels  " + "  ".join(f"{k} {v}" for k, v in sorted(report["channels"].items())))
    click.echo("per lane  " + "  ".join(f"{k} {v}" for k, v in sorted(report["lanes"].items())))
    click.echo(f"\nlast {last} crossings:")
    for row in report["crossings"]:
        click.echo(
            f"  {row['started_at'][:19]}  {row['lane']:<4} {row['tractor_plate'] or '-':<10} "
            f"{row['trailer_plate'] or '':<10} {row['channel'] or '-':<7} {row['phase']:<14} {row['outcome'] or ''}"
        )


@main.command()
@click.option("--trucks", default=20, show_default=True, help="How many trucks cross.")
@click.option("--speed", default="10", show_default=True,
              help="Time scale: 1 is real time, 10 ten times faster, 'max' as fast as possible.")
@click.option("--seed", default=7, show_default=True, help="Scenario seed, for a reproducible run.")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Keep the demo's database here (default: a temp dir).")
@click.option("--quiet", is_flag=True, help="Only the summary, no live view.")
@click.option("--console", "console_port", type=int, is_flag=False, flag_value=8080, default=None,
              help="Serve the officers' console on 127.0.0.1:PORT (default 8080) with demo users; "
                   "it stays up after the summary until Ctrl-C.")
@click.option("--offline", is_flag=True,
              help="Run without the RAU (by default a private mosquitto and the central hub run beside the agent "
                   "when mosquitto is installed).")
@click.option("--rau-console", "rau_console_port", type=int, is_flag=False, flag_value=8090, default=None,
              help="Serve the RAU's console beside the demo's hub on 127.0.0.1:PORT (default 8090), with users "
                   "analyst and senior who each sign with their own key; it stays up until Ctrl-C.")
def demo(trucks: int, speed: str, seed: int, data_dir: Path | None, quiet: bool, console_port: int | None,
         offline: bool, rau_console_port: int | None) -> None:
    """A whole crossing point on simulators: two lanes, a day's trucks, planted cases.

    Starts the agent with simulated weighbridges, plate cameras and loop detectors,
    drives a scenario of trucks through it (an overweight truck, a watch-listed
    consignee, a truck with no pre-arrival record, a misread plate, tobacco, a truck
    declared empty but loaded), shows the lanes live and ends with a summary that is
    checked against the scenario. Exit code 1 if any truck was not handled as expected.

    When mosquitto is installed the RAU runs beside it: a private broker on a loopback
    port and the central hub, which signs and sends an indicator bundle, routes the
    pre-arrival records and stores and acknowledges every event.
    """
    from edge_agent.demo import run_demo

    try:
        factor = 0.0 if speed == "max" else 1.0 / float(speed)
    except ValueError:
        raise click.BadParameter("a number or 'max'", param_hint="--speed") from None
    if rau_console_port is not None and offline:
        raise click.UsageError("--rau-console needs the RAU: drop --offline")
    online = True if rau_console_port is not None else (False if offline else None)
    ok = run_demo(trucks=trucks, time_factor=factor, seed=seed, data_dir=data_dir, live=not quiet,
                  console_port=console_port, online=online, rau_console_port=rau_console_port)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
