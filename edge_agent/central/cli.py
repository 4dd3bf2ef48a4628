"""`edge-agent central ...`: the RAU's reference hub and its bundle tools.

    edge-agent central serve --port 1883 --db central.db
    edge-agent central serve --db postgresql:///ledger?host=/run/postgresql --shared-group rau \
        --client-id rau-hub-1 --config central.toml      # one of several workers
    edge-agent central keygen --out keys/ --name root1
    edge-agent central root --out root-1.json --version 1 --root-key keys/root1.pub \\
        --role-key central=keys/central1.pub --role-key region/north=keys/north1.pub --sign keys/root1.key
    edge-agent central sign indicators.json --level central --scope central --version 7 \\
        --key keys/central1.key --check-root root-1.json --out bundle-7.json
    edge-agent central publish bundle-7.json --port 1883
    edge-agent central release bundle-7.json --db central.db   # or through the hub: published once
    edge-agent central bundles --db central.db  # what was released, and when the hub published it
    edge-agent central route record.json        # hand one SEED record to the hub
    edge-agent central tail --db central.db     # hits as they are stored
    edge-agent central sites --db central.db    # each site's link, devices, gates and lanes
    edge-agent central alerts --db central.db   # the alerts' deliveries and failures
    edge-agent central backup --db central.db --out central-copy.db   # SQLite's online backup
    edge-agent central console --db central.db --port 8090   # the RAU's web console
    edge-agent central console adduser --db central.db --role analyst ana   # users in rau_console.db
    edge-agent central console users|disable|enable ...
    edge-agent central audit verify --db central.db   # the RAU console's audit chain
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from edge_agent.central.broker import BrokerError, Endpoint, publish_once
from edge_agent.sync import topics


def broker_options(func):
    for option in reversed(
        [
            click.option("--host", default="127.0.0.1", show_default=True, help="MQTT broker host."),
            click.option("--port", default=1883, show_default=True, type=int),
            click.option("--tls-ca", type=click.Path(exists=True, path_type=Path)),
            click.option("--tls-cert", type=click.Path(exists=True, path_type=Path), help="Client certificate."),
            click.option("--tls-key", type=click.Path(exists=True, path_type=Path)),
            click.option("--protocol", type=click.Choice(["3.1.1", "5"]), default="3.1.1", show_default=True),
        ]
    ):
        func = option(func)
    return func


DB_HELP = "The ledger: a SQLite file, sqlite:///PATH, or postgresql://... (docs/central.md)."


def db_option(func):
    return click.option("--db", "db", default="central.db", show_default=True, metavar="PATH|URL", help=DB_HELP)(func)


def open_ledger(db: str, *, must_exist: bool = False):
    """The ledger for a command, or a clear error."""
    from edge_agent.central.ledger import Ledger, LedgerError, is_postgres, sqlite_path

    try:
        if must_exist and not is_postgres(db) and not sqlite_path(db).exists():
            raise click.ClickException(f"no ledger at {db}")
        return Ledger(db)
    except LedgerError as err:
        raise click.ClickException(str(err)) from err


def endpoint_from(host, port, tls_ca, tls_cert, tls_key, protocol) -> Endpoint:
    return Endpoint(host=host, port=port, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key, protocol=protocol)


@click.group()
def central() -> None:
    """The RAU's reference hub: serve, keys, bundles, routing."""


@central.command()
@broker_options
@click.option("--db", "db", default=None, metavar="PATH|URL", help=DB_HELP + "  [default: central.db]")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The hub's TOML file: ledger, office map, alert targets, SMTP relay, SMS gateway.")
@click.option("--client-id", default="rau-hub", show_default=True, help="Unique per worker.")
@click.option("--shared-group", default="", help="Share the ingest subscription with other hub instances.")
@click.option(
    "--office", "offices", multiple=True, metavar="OFFICE=SITE", help="Map a customs office code to a site id."
)
@click.option("--site", "sites", multiple=True, metavar="ID",
              help="A registered site; with any given (here or in the config's `sites`), others are refused.")
@click.option("--ready-file", type=click.Path(path_type=Path), help="Touched once connected (for supervisors).")
def serve(
    host, port, tls_ca, tls_cert, tls_key, protocol, db, config_path, client_id, shared_group, offices, sites,
    ready_file
) -> None:
    """Ingest events from all sites once each, acknowledge them, route SEED records, send alerts."""
    from edge_agent.central.config import HubConfig, load_hub_config
    from edge_agent.central.hub import Hub
    from edge_agent.central.ledger import LedgerError, describe
    from edge_agent.errors import ConfigError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # `edge-agent` has set up logging at WARNING already (basicConfig above is then a no-op):
    # a hub's routine log (stored batches, routing, publications, alerts) is its record.
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    try:
        config = load_hub_config(config_path) if config_path else HubConfig()
    except ConfigError as err:
        raise click.ClickException(str(err)) from err
    db = db or config.db or "central.db"
    office_map = dict(config.offices)
    for entry in offices:
        office, sep, site = entry.partition("=")
        if not sep or not office or not site:
            raise click.BadParameter(f"expected OFFICE=SITE, got {entry!r}", param_hint="--office")
        office_map[office] = site
    hub = Hub(
        endpoint_from(host, port, tls_ca, tls_cert, tls_key, protocol),
        db,
        client_id=client_id,
        shared_group=shared_group,
        offices=office_map,
        alerts=config.alerts,
        sites=frozenset(config.sites) | frozenset(sites),
    )
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        hub.start()
    except LedgerError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"central hub: broker {host}:{port}, store {describe(db)}")
    if ready_file:
        hub.connected.wait(30)
        ready_file.write_text(str(os.getpid()))
    while not done.wait(1.0):
        pass
    hub.stop()
    click.echo(f"central hub stopped: stored {hub.counters['stored']}, duplicates {hub.counters['duplicates']}")


@central.command()
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("keys"), show_default=True
)
@click.option("--name", required=True, help="Key name: NAME.key (private, 0600) and NAME.pub are written.")
def keygen(out_dir: Path, name: str) -> None:
    """Make an Ed25519 signing key for bundles or roots."""
    from edge_agent.sync.trust import generate_key, key_id

    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    if private_path.exists():
        raise click.ClickException(f"{private_path} exists: refusing to overwrite a key")
    private_hex, public_hex = generate_key()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private_hex + "\n")
    public_path.write_text(public_hex + "\n")
    click.echo(f"{name}: keyid {key_id(public_hex)}")


@central.command()
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--version", "version", type=int, required=True)
@click.option("--expires-days", type=int, default=365, show_default=True)
@click.option("--root-key", "root_pubs", multiple=True, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--root-threshold", type=int, default=1, show_default=True)
@click.option(
    "--role-key",
    "role_keys",
    multiple=True,
    metavar="ROLE=PUB",
    help="A public key of the role that signs one level: central, region/NAME, site/ID, region/* or site/*.",
)
@click.option(
    "--role-threshold", "role_thresholds", multiple=True, metavar="ROLE=N", help="Signatures a role needs (default 1)."
)
@click.option(
    "--reset-floor",
    "reset_floors",
    multiple=True,
    metavar="ROLE",
    help="Let the sites take a lower version of this level again: only with new keys for its role.",
)
@click.option(
    "--previous",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The root this one replaces: check that the sites will accept the rotation.",
)
@click.option("--indicators-key", "legacy_pubs", multiple=True, hidden=True)
@click.option(
    "--sign",
    "signers",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Private keys to sign with: for a rotation, the old root's AND the new root's.",
)
def root(
    out_path, version, expires_days, root_pubs, root_threshold, role_keys, role_thresholds, reset_floors, previous,
    legacy_pubs, signers,
) -> None:
    """Write a signed root of trust (version 1 at provisioning, then rotations).

    Each level has its own role: --role-key central=keys/central-a.pub --role-key
    region/north=keys/north-a.pub --role-threshold central=2.
    """
    from edge_agent.sync.trust import Root, canonical, make_root, rotate, sign

    if legacy_pubs:
        raise click.UsageError(
            "--indicators-key signed every level; name each level's role instead:"
            " --role-key central=PUB --role-key region/NAME=PUB (docs/sync.md, key ceremony)"
        )
    roles: dict[str, list[str]] = {}
    for entry in role_keys:
        name, public_path = _pair(entry, "--role-key")
        roles.setdefault(name, []).append(_read_key(_existing(public_path, "--role-key")))
    thresholds: dict[str, int] = {}
    for entry in role_thresholds:
        name, value = _pair(entry, "--role-threshold")
        if name not in roles:
            raise click.BadParameter(f"{name} has no --role-key", param_hint="--role-threshold")
        try:
            thresholds[name] = int(value)
        except ValueError as err:
            raise click.BadParameter(f"{entry}: not a number", param_hint="--role-threshold") from err
    if not roles:
        raise click.UsageError("no role signs indicators: give --role-key ROLE=PUB for each level")
    body = make_root(
        version=version,
        expires=datetime.now(UTC) + timedelta(days=expires_days),
        root_keys=[_read_key(p) for p in root_pubs],
        root_threshold=root_threshold,
        roles={name: (keys, thresholds.get(name, 1)) for name, keys in roles.items()},
        reset_floors=list(reset_floors),
    )
    document = sign(body, [_read_key(p) for p in signers])
    try:
        parsed = Root.parse(document)
        if previous is not None:
            rotate(Root.parse(json.loads(previous.read_text(encoding="utf-8"))), document)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    out_path.write_bytes(canonical(document))
    click.echo(f"root v{version} written to {out_path}")
    for name, role in sorted(parsed.roles.items()):
        click.echo(f"  {name:<24} {role.threshold} of {len(role.keyids)} key(s)")
    if parsed.reset_floors:
        click.echo(f"  resets the version floor of: {', '.join(parsed.reset_floors)}")


@central.command("sign")
@click.argument("indicators_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--level", type=click.Choice(["central", "region", "site"]), required=True)
@click.option("--scope", required=True, help="'central', the region id, or the site id.")
@click.option("--version", "version", type=int, required=True)
@click.option("--expires-days", type=float, default=30, show_default=True)
@click.option("--key", "keys", multiple=True, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--root",
    "roots",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="New root documents to ship with the bundle (a rotation chain).",
)
@click.option(
    "--delta-from",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The base indicator document: write a delta instead of a full bundle.",
)
@click.option("--base-version", type=int, help="The version of the --delta-from bundle.")
@click.option(
    "--check-root",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The root the sites trust: refuse to write a bundle its role for this level would refuse"
    " (with --root, the newest root shipped is checked).",
)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
def sign_command(
    indicators_file, level, scope, version, expires_days, keys, roots, delta_from, base_version, check_root, out_path
) -> None:
    """Sign an indicator-set document into a bundle (full, or a delta on a base).

    The keys must be of the root's role for the level: central, region/SCOPE or
    site/SCOPE (a regional desk's keys cannot sign the central set).
    """
    from edge_agent.sync.bundles import build_delta, build_full, pack

    indicators = json.loads(indicators_file.read_text(encoding="utf-8"))
    now = datetime.now(UTC)
    expires = now + timedelta(days=expires_days)
    if delta_from:
        if base_version is None:
            raise click.BadParameter("a delta needs --base-version", param_hint="--base-version")
        base = json.loads(delta_from.read_text(encoding="utf-8"))
        try:
            body = build_delta(
                base, base_version, indicators, level=level, scope=scope, version=version, expires=expires, created=now
            )
        except ValueError as err:
            raise click.ClickException(str(err)) from err
    else:
        body = build_full(indicators, level=level, scope=scope, version=version, expires=expires, created=now)
    root_docs = [json.loads(p.read_text(encoding="utf-8")) for p in roots]
    private_keys = [_read_key(p) for p in keys]
    checked = max(root_docs, key=lambda d: d.get("signed", {}).get("version", 0)) if root_docs else None
    if checked is None and check_root is not None:
        checked = json.loads(check_root.read_text(encoding="utf-8"))
    if checked is not None:
        _check_signers(checked, f"{level}:{scope}", private_keys)
    payload = pack(body, private_keys, root_docs)
    out_path.write_bytes(payload)
    click.echo(
        f"{body['kind']} bundle {level}:{scope} v{version}, {len(payload)} bytes,"
        f" expires {body['expires']} -> {out_path}"
    )


@central.command()
@click.argument("bundle_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@broker_options
def publish(bundle_file, host, port, tls_ca, tls_cert, tls_key, protocol) -> None:
    """Publish a signed bundle on its topic (full: retained; delta: not retained)."""
    payload = bundle_file.read_bytes()
    try:
        signed = json.loads(payload)["bundle"]["signed"]
        level, scope, kind = signed["level"], signed["scope"], signed.get("kind", "full")
    except (ValueError, KeyError, TypeError) as err:
        raise click.ClickException(f"{bundle_file} is not a bundle: {err}") from err
    topic = {
        "central": topics.INDICATORS_CENTRAL,
        "region": topics.indicators_region(scope),
        "site": f"{topics.ROOT}/{scope}/down/indicators",
    }[level]
    # A delta must not replace the retained full bundle: that is the fallback.
    retain = kind == "full"
    try:
        publish_once(
            endpoint_from(host, port, tls_ca, tls_cert, tls_key, protocol),
            f"rau-publish-{os.getpid()}",
            [(topic, payload, retain)],
        )
    except BrokerError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"published {kind} bundle v{signed['version']} on {topic}{' (retained)' if retain else ''}")


@central.command()
@click.argument("bundle_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
def release(bundle_files, db) -> None:
    """Release signed bundles through the hub: kept in the ledger and published once, in
    this order, by the hub worker holding the duties (full: retained; delta: not)."""
    from edge_agent.central.release import destination
    from edge_agent.central.release import release as release_bundle

    payloads = [(p, p.read_bytes()) for p in bundle_files]
    for path, payload in payloads:  # all or none: a delta must not go out without its base
        found = destination(payload)
        if isinstance(found, str):
            raise click.ClickException(f"{path}: {found}")
    ledger = open_ledger(db, must_exist=True)
    try:
        for _, payload in payloads:
            released = release_bundle(ledger, payload)
            assert not isinstance(released, str)  # checked above
            where, new = released
            retained = " (retained)" if where.retain else ""
            click.echo(f"{where.label}: released, the hub publishes it on {where.topic}{retained}" if new
                       else f"{where.label}: already released, not published again")
    finally:
        ledger.close()


@central.command()
@db_option
@click.option("--limit", type=int, default=20, show_default=True)
def bundles(db, limit) -> None:
    """The bundles released through the hub, newest first, and when the hub published each."""
    ledger = open_ledger(db, must_exist=True)
    try:
        rows = ledger.bundles(limit)
    finally:
        ledger.close()
    if not rows:
        click.echo("no bundle released through the hub")
    for label, topic, queued_at, published_at in rows:
        click.echo(f"{label} on {topic}: released {queued_at}, "
                   + (f"published {published_at}" if published_at else "NOT YET PUBLISHED"))


@central.command("route")
@click.argument("record_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@broker_options
def route_command(record_files, host, port, tls_ca, tls_cert, tls_key, protocol) -> None:
    """Hand SEED pre-arrival records (JSON files) to the hub for routing."""
    messages = [(topics.SEED_INBOX, p.read_bytes(), False) for p in record_files]
    try:
        publish_once(
            endpoint_from(host, port, tls_ca, tls_cert, tls_key, protocol), f"seed-route-{os.getpid()}", messages
        )
    except BrokerError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{len(messages)} record(s) handed to the hub on {topics.SEED_INBOX}")


@central.command()
@db_option
@click.option("--follow/--no-follow", default=True, show_default=True)
@click.option("--all", "from_start", is_flag=True, help="Show stored hits from the start, not only new ones.")
@click.option("--count", type=int, default=0, help="Stop after this many hits (0: never).")
@click.option("--interval-s", type=float, default=0.5, show_default=True, help="Seconds between looks at the ledger.")
def tail(db, follow, from_start, count, interval_s) -> None:
    """Show hits as the hub stores them."""
    ledger = open_ledger(db)
    position = 0 if from_start else ledger.max_rowid()
    shown = 0
    try:
        while True:
            for rowid, site, hit in ledger.hits_after(position):
                position = rowid
                shown += 1
                click.echo(
                    f"{hit.get('at', '')} {site} HIT {hit.get('indicator_id', '?')} -> {hit.get('channel', '?')}"
                    f" ref={hit.get('reference', '') or '-'} {hit.get('title', '')}".rstrip()
                )
                sys.stdout.flush()
                if count and shown >= count:
                    return
            if not follow:
                return
            time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        ledger.close()


@central.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def sites(db, as_json) -> None:
    """Each site as the hub last heard of it: online or offline, its devices, gates and lanes."""
    ledger = open_ledger(db, must_exist=True)
    try:
        rows = ledger.sites()
        for row in rows:
            row["audit_anchor"] = (ledger.latest(row["site"], "audit_anchor", "seq") or {}).get("seq")
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no site has reported yet")
    for row in rows:
        click.echo("\n".join(site_lines(row)))


@central.command()
@db_option
@click.option("--failed", "failed_only", is_flag=True, help="Only what was not delivered: failed or suppressed.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def alerts(db, failed_only, limit, as_json) -> None:
    """The alerts the hub sent or tried to send (e-mail, SMS), newest first, with the counts."""
    from dataclasses import asdict

    ledger = open_ledger(db, must_exist=True)
    try:
        rows, counts = ledger.deliveries(failed_only=failed_only, limit=limit), ledger.delivery_counts()
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps({"counts": counts, "deliveries": [asdict(r) for r in rows]}, indent=2))
        return
    click.echo("deliveries: " + (", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"))
    for r in rows:
        when = r.sent_at or r.created_at
        error = f"  ({r.error})" if r.error and r.status != "sent" else ""
        click.echo(f"{when} {r.status:<10} {r.channel:<5} {r.recipient} {r.indicator_id} at {r.site}"
                   f" hit {r.hit_id}, {r.attempts} attempt(s){error}")


@central.command()
@db_option
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
def backup(db, out_path) -> None:
    """A consistent copy of a SQLite ledger while the hub keeps writing (for PostgreSQL: pg_dump)."""
    from edge_agent.central.ledger import is_postgres

    if is_postgres(db):
        raise click.ClickException("a PostgreSQL ledger is backed up with pg_dump -Fc (docs/central.md)")
    if out_path.exists():
        raise click.ClickException(f"{out_path} exists: refusing to overwrite it")
    ledger = open_ledger(db, must_exist=True)
    try:
        ledger.backup(out_path)
        events = ledger.count()
    finally:
        ledger.close()
    click.echo(f"{events} events backed up to {out_path}")


def site_lines(row: dict) -> list[str]:
    """A site's status as an RAU analyst reads it: the link first, then what is wrong in the lanes."""
    health = row.get("health") or {}
    lanes = health.get("lanes") or {}
    lines = [f"{row['site']}  {row.get('state') or 'unknown'} since {row.get('state_at') or '-'}"
             f"  backlog {health.get('backlog', '-')}  last health {row.get('health_at') or 'never'}"
             f"  audit anchored to entry {row.get('audit_anchor') or '-'}"]
    for name, device in sorted((lanes.get("devices") or {}).items()):
        up = {True: "up", False: "DOWN"}.get(device.get("up"), "?")
        rate = device.get("frames_per_s")
        lines.append(f"  {name:<28} {up:<5}" + (f" {rate:g} frames/s" if rate is not None else ""))
    for lane, gate in sorted((lanes.get("gates") or {}).items()):
        phase = (lanes.get("phases") or {}).get(lane, "?")
        fault = f"  FAULT: {gate['fault']}" if gate.get("fault") else ""
        lines.append(f"  lane {lane}: {phase}, barrier {gate.get('barrier', '?')}, lights {gate.get('lights', '?')}"
                     + fault)
    return lines


def _read_key(path: Path) -> str:
    text = path.read_text(encoding="utf-8").strip()
    try:
        bytes.fromhex(text)
    except ValueError as err:
        raise click.ClickException(f"{path}: not a hex key") from err
    return text


def _pair(entry: str, option: str) -> tuple[str, str]:
    name, sep, value = entry.partition("=")
    if not sep or not name or not value:
        raise click.BadParameter(f"expected ROLE=VALUE, got {entry!r}", param_hint=option)
    return name, value


def _existing(path: str, option: str) -> Path:
    if not Path(path).is_file():
        raise click.BadParameter(f"{path}: no such file", param_hint=option)
    return Path(path)


def _check_signers(root_document: dict, slot: str, private_keys: list[str]) -> None:
    """Refuse, before anything is written, keys that the sites would refuse for `slot`."""
    from edge_agent.sync.trust import Root, key_id, public_of

    try:
        root = Root.parse(root_document)
    except ValueError as err:
        raise click.ClickException(f"the root to check against: {err}") from err
    found = root.role_for(slot)
    if found is None:
        raise click.ClickException(f"root v{root.version} names no role that may sign {slot}")
    name, role = found
    signers = {key_id(public_of(k)) for k in private_keys}
    ours = signers & set(role.keyids)
    if len(ours) < role.threshold:
        raise click.ClickException(
            f"{slot} must be signed by {role.threshold} key(s) of role {name} (root v{root.version});"
            f" {len(ours)} of the {len(signers)} key(s) given are"
        )


# ------------------------------------------------------------------ the RAU's console

_CONSOLE_ROLES = ["analyst", "senior_analyst", "monitoring", "administrator"]


def console_db_option(func):
    return click.option("--users-db", "users_db", type=click.Path(dir_okay=False, path_type=Path),
                        help="The console's own SQLite file (users, sessions, audit log)"
                             "  [default: rau_console.db beside a SQLite ledger, else in the working directory]")(func)


def _users_db(db: str, users_db: Path | None) -> Path:
    from edge_agent.central.console.pages import users_db_beside

    return users_db or users_db_beside(db)


def _hub_config(config_path: Path | None):
    """The central.toml given (a clear error naming each bad key), or the defaults."""
    from edge_agent.central.config import HubConfig, load_hub_config
    from edge_agent.errors import ConfigError

    try:
        return load_hub_config(config_path) if config_path else HubConfig()
    except ConfigError as err:
        raise click.ClickException(str(err)) from err


@central.group("console", invoke_without_command=True)
@db_option
@console_db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address (put TLS in front of it).")
@click.option("--port", type=int, default=8090, show_default=True)
@click.option("--trusted-proxy", "trusted_proxies", multiple=True, metavar="CIDR",
              help="A reverse proxy whose X-Forwarded-For is believed (repeat).")
@click.option("--secure-cookies", is_flag=True, help="Mark the session cookie Secure (behind a TLS proxy).")
@click.option("--keys-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Indicator signing: each user's key as USERNAME.key (edge-agent central keygen --name USERNAME).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The hub's central.toml: its [console] section (the channel mix targets).")
@click.pass_context
def console_command(ctx, db, users_db, host, port, trusted_proxies, secure_cookies, keys_dir, config_path) -> None:
    """The RAU's web console on the hub's ledger: serve it, or manage its users."""
    if ctx.invoked_subcommand is not None:
        return
    from edge_agent.central.console.app import serve
    from edge_agent.central.console.pages import RauConsoleSettings, trusted_networks

    open_ledger(db).close()  # a clear error now rather than a traceback in the server
    try:
        proxies = trusted_networks(list(trusted_proxies))
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--trusted-proxy") from err
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    targets = _hub_config(config_path).console
    serve(RauConsoleSettings(ledger=db, users_db=_users_db(db, users_db), host=host, port=port,
                             trusted_proxies=proxies, secure_cookies=secure_cookies, keys_dir=keys_dir,
                             targets=targets))


@console_command.command("adduser")
@db_option
@console_db_option
@click.option("--role", type=click.Choice(_CONSOLE_ROLES), required=True)
@click.option("--name", "full_name", default="", help="Full name, shown in the audit log.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--replace", is_flag=True, help="Reset an existing user's role and password (ends their sessions).")
@click.argument("username")
def console_adduser(db, users_db, role, full_name, password_stdin, replace, username) -> None:
    """Create an RAU console user; the password is hashed with Argon2id."""
    from edge_agent.central.console.roles import Accounts
    from edge_agent.web.user_commands import read_password, save_user

    save_user(Accounts, _users_db(db, users_db), "administrator", username, role, read_password(password_stdin),
              full_name, replace)


@console_command.command("users")
@db_option
@console_db_option
def console_users(db, users_db) -> None:
    """List the RAU console's users and roles (disabled ones marked)."""
    from edge_agent.central.console.roles import Accounts
    from edge_agent.web.user_commands import list_users

    list_users(Accounts, _users_db(db, users_db), role_width=16)


@console_command.command("disable")
@db_option
@console_db_option
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.argument("username")
def console_disable(db, users_db, reason, username) -> None:
    """Disable a user: no more logins, and their open sessions end at once."""
    _console_set_disabled(_users_db(db, users_db), username, True, reason)


@console_command.command("enable")
@db_option
@console_db_option
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.argument("username")
def console_enable(db, users_db, reason, username) -> None:
    """Enable a disabled user again (they log in anew)."""
    _console_set_disabled(_users_db(db, users_db), username, False, reason)


def _console_set_disabled(path: Path, username: str, disabled: bool, reason: str) -> None:
    from edge_agent.central.console.roles import Accounts
    from edge_agent.web.user_commands import set_disabled

    set_disabled(Accounts, path, "administrator", username, disabled, reason)


@central.group("audit")
def central_audit() -> None:
    """The RAU console's audit log."""


@central_audit.command("verify")
@db_option
@console_db_option
def central_audit_verify(db, users_db) -> None:
    """Check every link of the RAU console's audit chain; exit 1 at the first broken one."""
    from edge_agent.web.audit import verify

    path = _users_db(db, users_db)
    result = verify(path)
    if result.ok:
        click.echo(f"{path}: audit log intact, {result.entries} entries")
        return
    where = f"entry {result.bad_seq}: " if result.bad_seq is not None else ""
    click.echo(f"{path}: audit log BROKEN after {result.entries} good entries: {where}{result.problem}", err=True)
    sys.exit(1)
