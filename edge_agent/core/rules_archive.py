"""Every indicator set that was in force, kept so that a past verdict can be re-run.

A set in force is composed from sources: the files the site names, the sets imported
into `<data_dir>/indicators/`, and the RAU's bundles the trust store holds; the channel
policy that turned their hits into a channel is kept beside them (without its secrets,
which stay in the site file by version). Whenever the
composition changes (start, a bundle applied, a local edit, a reload) each source's
bytes are copied into `<data_dir>/rules-archive/<sha256>.json` (content-addressed: an
unchanged source is stored once) and the store records the list of sources with the time
from which it was in force (`Store.rules_went_in_force`). `recompose` rebuilds the set
of any moment from the archive, exactly as `rules_in_force` built it then.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig, PolicyConfig
from edge_agent.durable import replace_file
from edge_agent.errors import IndicatorError
from edge_agent.local_rules import IndicatorSet, load_indicator_set
from edge_agent.local_rules.indicators import site_indicator_files
from edge_agent.sync.trust import TrustStore, canonical

log = logging.getLogger(__name__)

ARCHIVE_DIR = "rules-archive"
POLICY_LABEL = "policy"
# The secrets stay in the site file, where a rotation keeps the old ones by version.
_POLICY_SECRETS = {"random_secret", "random_secret_version", "retired_random_secrets"}


@dataclass(frozen=True)
class Source:
    """One document of a set in force: where it came from, its digest, a bundle's expiry."""

    label: str  # file:<path> | bundle:<slot>
    sha256: str
    expires: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "sha256": self.sha256,
                "expires": self.expires.isoformat() if self.expires else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Source:
        expires = data.get("expires")
        return cls(data["label"], data["sha256"], datetime.fromisoformat(expires) if expires else None)


class ArchiveMissing(IndicatorError):
    """A source of a past set is no longer in the archive (purged, or never archived)."""


class ArchiveAltered(ArchiveMissing):
    """An archived source's bytes no longer match the digest recorded when it was in force."""


def compose(sets: list[tuple[IndicatorSet, datetime | None]], site: str, region: str) -> IndicatorSet:
    """The merged, site-scoped set; a bundle's signed expiry makes it stale even when its
    document names none (or a later one)."""
    stamped = []
    for found, expires in sets:
        if expires is not None and (found.expires_at is None or expires < found.expires_at):
            found = IndicatorSet(found.version, found.indicators, found.lists, found.issued_at, expires,
                                 found.rejected)
        stamped.append(found)
    if not stamped:
        log.warning("rules_empty reason=no indicator files configured and no bundle received")
    return IndicatorSet.merge(*stamped).for_site(site, region)


def current_sources(config: AgentConfig, data_dir: Path, trust: Path,
                    expiries: dict[str, datetime]) -> list[tuple[Source, bytes]]:
    """The sources of the set in force now, with their bytes (bundles in canonical JSON),
    then the policy."""
    out: list[tuple[Source, bytes]] = []
    for path in site_indicator_files(config.rules.indicator_files, data_dir):
        data = Path(path).read_bytes()
        out.append((Source(f"file:{path}", hashlib.sha256(data).hexdigest()), data))
    store = TrustStore(trust)
    if store.installed:
        for slot in sorted(store.load().applied):
            document = store.active(slot)
            if document is not None:
                data = canonical(document)
                out.append((Source(f"bundle:{slot}", hashlib.sha256(data).hexdigest(), expiries.get(slot)), data))
    policy = canonical(config.policy.model_dump(mode="json", exclude=_POLICY_SECRETS))
    out.append((Source(POLICY_LABEL, hashlib.sha256(policy).hexdigest()), policy))
    return out


def archive(sources: list[tuple[Source, bytes]], data_dir: Path) -> list[Source]:
    """Copy each source into the archive unless it is there already; the sources, in order."""
    folder = Path(data_dir) / ARCHIVE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for source, data in sources:
        path = folder / f"{source.sha256}.json"
        if not path.exists():
            replace_file(path, data)
    return [source for source, _ in sources]


def digest_of(sources: list[Source], site: str, region: str) -> str:
    body = json.dumps({"site": site, "region": region, "sources": [s.to_json() for s in sources]},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def recompose(sources: list[Source], data_dir: Path, config: AgentConfig) -> IndicatorSet:
    """The set these sources made, from the archive, as it was composed then."""
    folder = Path(data_dir) / ARCHIVE_DIR
    channels = [c.code for c in config.policy.channels]
    sets: list[tuple[IndicatorSet, datetime | None]] = []
    for source in sources:
        if source.label == POLICY_LABEL:
            continue
        found = load_indicator_set(_archived(source, folder), channels=channels)
        if source.label.startswith("bundle:") and not found.version:
            found = IndicatorSet(source.label.removeprefix("bundle:"), found.indicators, found.lists,
                                 found.issued_at, found.expires_at, found.rejected)
        sets.append((found, source.expires))
    return compose(sets, config.site.id, config.site.region)


def archived_policy(sources: list[Source], data_dir: Path, current: PolicyConfig) -> PolicyConfig | None:
    """The policy in force with these sources, carrying the current secrets (kept by
    version in the site file); None for a composition recorded without one."""
    for source in sources:
        if source.label == POLICY_LABEL:
            fields = json.loads(_archived(source, Path(data_dir) / ARCHIVE_DIR))
            return PolicyConfig.model_validate({**fields, "random_secret": current.random_secret,
                                                "random_secret_version": current.random_secret_version,
                                                "retired_random_secrets": current.retired_random_secrets})
    return None


def _archived(source: Source, folder: Path) -> bytes:
    path = folder / f"{source.sha256}.json"
    if not path.exists():
        raise ArchiveMissing([(source.label, f"not in the archive ({source.sha256[:12]}...)")], str(folder))
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise ArchiveAltered([(source.label, f"altered since it was archived ({source.sha256[:12]}...)")],
                             str(folder))
    return data
