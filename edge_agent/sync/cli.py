"""`edge-agent sync ...`: the outbox and the root of trust, seen from the site.

edge-agent sync status --config site.toml          # outbox backlog per stream, trust state
edge-agent sync install-root root-1.json --config site.toml   # provisioning
edge-agent sync verify bundle.json --config site.toml         # would this bundle be accepted? why not?
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from edge_agent.sync.trust import Root, TrustState, TrustStore


def _config(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except ConfigError as err:
        raise click.ClickException(str(err)) from err


def trust_dir(config: AgentConfig) -> Path:
    return config.sync.trust_dir or config.site.data_dir / "trust"


@click.group()
def sync() -> None:
    """The link to the RAU: outbox status, root of trust."""


@sync.command()
@click.option("--config", "config_path", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True)
def status(config_path: Path, as_json: bool) -> None:
    """Outbox backlog by stream and class, and the accepted bundle versions."""
    from edge_agent.store import Store
    from edge_agent.sync.trust import TrustStore

    config = _config(config_path)
    out: dict = {"site": config.site.id, "broker": f"{config.sync.broker_host}:{config.sync.broker_port}"}
    try:
        store = Store.reader(config.site.data_dir / "agent.db")
    except StoreError as err:
        raise click.ClickException(str(err)) from err
    try:
        out["outbox"] = store.outbox_by_stream()
    finally:
        store.close()
    budget = config.sync.outbox_budget_mb * 1024 * 1024
    customs = sum(r["bytes"] for r in out["outbox"] if r["class"] == "customs")
    out["budget_bytes"] = int(budget)
    out["customs_alarm"] = customs >= budget * config.sync.customs_alarm_pct / 100
    trust = TrustStore(trust_dir(config))
    if trust.installed:
        state = trust.load()
        out["root_version"] = state.root.version
        out["root_expires"] = state.root.expires.isoformat()
        out["root_roles"] = {name: {"keys": len(r.keyids), "threshold": r.threshold}
                             for name, r in sorted(state.root.roles.items())}
        out["root_legacy"] = state.root.legacy
        out["bundles"] = {
            slot: {
                "version": a.version,
                "expires": a.expires.isoformat(),
                "stale": a.expires <= datetime.now(UTC),
            }
            for slot, a in state.applied.items()
        }
    else:
        out["root_version"] = None
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"site {out['site']}  broker {out['broker']}")
    total = sum(r["rows"] for r in out["outbox"])
    click.echo(f"outbox: {total} undelivered" + ("  CUSTOMS BUDGET ALARM" if out["customs_alarm"] else ""))
    for r in out["outbox"]:
        click.echo(
            f"  {r['stream']:<16} {r['class']:<8} {r['rows']:>8} rows {r['bytes']:>12} bytes  oldest {r['oldest']}"
        )
    if out["root_version"] is None:
        click.echo("root of trust: NOT INSTALLED (edge-agent sync install-root)")
    else:
        click.echo(f"root of trust: v{out['root_version']}, expires {out['root_expires']}")
        for line in _role_lines(state.root):
            click.echo(line)
        for slot, b in out.get("bundles", {}).items():
            click.echo(f"  {slot:<24} v{b['version']}  expires {b['expires']}{'  STALE' if b['stale'] else ''}")


@sync.command("install-root")
@click.argument("root_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace an installed root (re-provisioning only).")
def install_root(root_file: Path, config_path: Path, force: bool) -> None:
    """Install the root of trust at provisioning (later roots arrive signed, in bundles)."""
    from edge_agent.ownership import give_to_directory_owner
    from edge_agent.sync.trust import Root, TrustStore

    config = _config(config_path)
    trust = TrustStore(trust_dir(config))
    if trust.installed and not force:
        raise click.ClickException(f"a root is already installed in {trust.dir}; rotations arrive in bundles")
    try:
        document = json.loads(root_file.read_text(encoding="utf-8"))
        root = Root.parse(document)
        if not root.verifies(document, "root"):
            raise ValueError("the root is not signed by a threshold of its own root keys")
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise click.ClickException(f"{root_file}: {err}") from err
    trust.install_root(document)
    give_to_directory_owner(trust.dir)
    click.echo(f"root v{root.version} installed in {trust.dir}")
    for line in _role_lines(root):
        click.echo(line)


def _role_lines(root: Root) -> list[str]:
    """Which keys sign which level, as the site will enforce it."""
    lines = [f"  {name:<24} {role.threshold} of {len(role.keyids)} key(s)" for name, role in sorted(root.roles.items())]
    if root.legacy:
        lines.append("  LEGACY ROOT: one indicators role signs every level; rotate to roles per level")
    return lines


@sync.command()
@click.argument("bundle_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(exists=True, path_type=Path), required=True)
def verify(bundle_file: Path, config_path: Path) -> None:
    """Check a bundle against this site's trust state without applying it.

    Prints "accepted: ..." (exit 0) or "rejected: REASON: DETAIL" (exit 1): the same
    reason the agent would log and report upward, whatever the file holds.
    """
    from edge_agent.sync.bundles import Accepted, active_set, bundle_slot, verify_bundle

    config = _config(config_path)
    trust = _trust(config)
    state = _load_trust(trust)
    payload = bundle_file.read_bytes()
    max_bytes = int(config.sync.max_bundle_mb * 1024 * 1024)
    # No topic here: the bundle's own slot says which active set a delta applies to.
    slot = bundle_slot(payload, max_bytes)
    result = verify_bundle(
        payload,
        state,
        site=config.site.id,
        region=config.site.region,
        now=datetime.now(UTC),
        current=active_set(trust, state, slot) if slot else None,
        max_bytes=max_bytes,
    )
    if isinstance(result, Accepted):
        rotated = f", root rotated to v{result.rotated_to}" if result.rotated_to else ""
        click.echo(f"accepted: {result.label} ({result.kind}), expires {result.expires.isoformat()},"
                   f" signed by role {result.role}{rotated}")
    else:
        click.echo(f"rejected: {result.reason}: {result.detail}")
        raise SystemExit(1)


def _trust(config: AgentConfig) -> TrustStore:
    from edge_agent.sync.trust import TrustStore

    trust = TrustStore(trust_dir(config))
    if not trust.installed:
        raise click.ClickException("no root of trust installed")
    return trust


def _load_trust(trust: TrustStore) -> TrustState:
    try:
        return trust.load()
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise click.ClickException(f"the trust state in {trust.dir} cannot be read: {err}") from err
