"""`edge-agent evidence ...`: the technician's and the auditor's view of the evidence."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edge_agent.evidence import evidence_root

LOCAL_ONLY = ("LOCAL-ONLY: checked against this folder alone. Removing the newest manifests, or replacing a file"
              " and recomputing every later manifest, would pass. Give --central-db (the hub's ledger, which"
              " holds the heads the site sent) or --head with a manifest digest anchored at the RAU, or"
              " --local-only to accept this.")


@click.group()
def evidence() -> None:
    """Evidence files: verify the hash chain of the manifests."""


@evidence.command()
@click.option("--dir", "root", type=click.Path(path_type=Path), help="The evidence folder.")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="The site file; its data_dir/evidence is checked.")
@click.option("--head", "expected_head", default=None,
              help="A manifest SHA-256 anchored at the RAU (at least 12 hex digits) that must be in the chain.")
@click.option("--central-db", "central_db", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The RAU hub's ledger (central.db, or a copy): the newest head the site sent must be in the chain.")
@click.option("--site", "site_id", help="The site's id in --central-db (default: the site file's).")
@click.option("--grace-s", default=24 * 3600.0, show_default=True,
              help="Unlisted files of a crossing with no manifest are problems once older than this "
                   "(open crossings are younger); in a sealed crossing they are problems at once.")
@click.option("--local-only", is_flag=True,
              help="Accept a result checked against this folder alone (no --head): exit 0 if it holds.")
@click.option("--show-purges", is_flag=True, help="List each file retention purged (the count is always shown).")
def verify(root: Path | None, config_path: Path | None, expected_head: str | None, central_db: Path | None,
           site_id: str | None, grace_s: float, local_only: bool, show_purges: bool) -> None:
    """Check every manifest link, sequence number and file digest; exit 1 on any problem.

    Without --head (the newest manifest digest anchored at the RAU) the chain proves only
    that it is consistent with itself: a forger who removed the newest manifests, or
    replaced a file and recomputed every later manifest, passes. Such a result is
    LOCAL-ONLY and exits 3 unless --local-only accepts it.

    Files deleted by retention, each after its tombstone in the chain, are purges, not
    problems: they are counted apart (and listed with --show-purges)."""
    from edge_agent.evidence.manifest import manifest_paths
    from edge_agent.evidence.verify import verify_evidence

    if (root is None) == (config_path is None):
        raise click.UsageError("give exactly one of --dir DIR or --config SITE.toml")
    if expected_head and central_db:
        raise click.UsageError("give --head or --central-db, not both")
    if config_path is not None:
        from edge_agent.config import load_config
        from edge_agent.errors import ConfigError

        try:
            config = load_config(config_path)
        except ConfigError as err:
            click.echo(f"{err.source}: configuration refused:", err=True)
            for problem in err.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(2)
        root = evidence_root(config.site.data_dir)
        site_id = site_id or config.site.id
    assert root is not None
    if central_db is not None:
        if not site_id:
            raise click.UsageError("--central-db needs --site ID (or --config SITE.toml)")
        expected_head = _central_head(central_db, site_id)
        if expected_head is None:
            click.echo(f"the hub's {central_db} holds no evidence head of {site_id} yet")
    notices: list[str] = []
    purges: list[str] = []
    problems = verify_evidence(root, expected_head=expected_head, unsealed_grace_s=grace_s, notices=notices,
                               purges=purges)
    for line in problems + notices + (purges if show_purges else []):
        click.echo(line)
    if purges:
        click.echo(f"{len(purges)} purged file(s) (retention, each with its tombstone)")
    if problems:
        click.echo(f"{root}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    summary = f"{root}: ok: {len(manifest_paths(root))} manifest(s), chain intact"
    if expected_head:
        click.echo(f"{summary}, reaches the anchored manifest {expected_head.strip().lower()[:16]}")
        return
    click.echo(f"{summary}, LOCAL-ONLY")
    click.echo(LOCAL_ONLY, err=True)
    if not local_only:
        sys.exit(3)


@evidence.command("verify-export")
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def verify_export_command(archive: Path) -> None:
    """Check an evidence export from the RAU console offline: the archive's checksums,
    every member's SHA-256, each file against its manifest, and the manifest chain up to
    the head the site anchored at the RAU. Exit 1 on any problem (one changed byte)."""
    from edge_agent.evidence.export import verify_export

    problems, index = verify_export(archive)
    for line in problems:
        click.echo(line)
    if problems:
        click.echo(f"{archive}: {len(problems)} problem(s): this archive is not as the RAU exported it", err=True)
        sys.exit(1)
    head = index.get("anchored_head") or {}
    files = [f for f in index.get("files") or [] if f.get("member")]
    click.echo(f"{archive}: ok: crossing {index.get('crossing_id')} of {index.get('site')}, {len(files)} file(s) "
               f"match their manifests, {len(index.get('chain') or [])} manifest(s) chain to the anchored head "
               f"sequence {head.get('sequence')} sha256 {head.get('sha256')}")
    click.echo("Compare that head with the RAU's record of the site's evidence heads.")


def _central_head(central_db: Path, site_id: str) -> str | None:
    """The newest evidence head the site sent to the RAU, as the hub stored it."""
    from edge_agent.central.ledger import latest_event

    body = latest_event(central_db, site_id, "evidence_head", "sequence")
    return str(body["sha256"]) if body and body.get("sha256") else None
