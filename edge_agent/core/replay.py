"""Re-running a stored crossing's assessment with the rules and policy of its time.

An auditor, a court or the RAU asks why a truck went the way it did. The assessment
keeps what the lane saw and which random-selection secret version drew; the pre-arrival
record is stored; the store says which composition of indicator sets was in force at
that moment and the archive holds its sources (core/rules_archive.py). `replay` puts
them together and assesses again; the result says whether the verdict is the same and,
when it is not (or cannot be re-run), why.

    result = replay(config, data_dir, "01J...")
    result.same, result.differences, result.to_json()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.core.rules_archive import ArchiveAltered, ArchiveMissing, Source, archived_policy, recompose
from edge_agent.core.rules_in_force import with_floor
from edge_agent.errors import AgentError
from edge_agent.local_rules import assess
from edge_agent.models import Assessment
from edge_agent.store import Store


class ReplayError(AgentError, LookupError):
    """The crossing cannot be replayed at all (unknown, or never assessed)."""


@dataclass
class Replay:
    crossing: str
    stored: dict[str, Any]
    replayed: dict[str, Any] | None = None
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return self.replayed is not None and not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"crossing": self.crossing, "same": self.same, "stored": self.stored, "replayed": self.replayed,
                "differences": self.differences, "notes": self.notes}


def replay(config: AgentConfig, data_dir: Path, crossing_id: str) -> Replay:
    store = Store.reader(Path(data_dir) / "agent.db")
    try:
        row = store.latest_assessment(crossing_id)
        if row is None:
            raise ReplayError(f"no assessment of crossing {crossing_id!r} in this site's database")
        stored = Assessment.model_validate_json(row["body"])
        record = store.prearrival(stored.reference) if stored.reference else None
        composition = store.rules_in_force_at(stored.at)
    finally:
        store.close()
    result = Replay(crossing_id, _summary(stored.channel, stored.random_selected, [h.indicator_id for h in stored.hits],
                                          stored.indicator_set))
    if stored.seen is None:
        result.notes.append("the assessment predates stored observations: it cannot be re-run")
        return result
    if stored.reference and record is None:
        result.notes.append(f"the pre-arrival record {stored.reference} is no longer stored: it cannot be re-run")
        return result
    if composition is None:
        result.notes.append("no indicator set is recorded in force at the assessment's time: it cannot be re-run")
        return result
    sources = [Source.from_json(s) for s in composition[1]]
    try:
        rules = recompose(sources, data_dir, config)
        policy = archived_policy(sources, data_dir, config.policy)
    except ArchiveAltered as err:
        result.notes.append(f"the set in force then was altered in the archive: {err}")
        return result
    except ArchiveMissing as err:
        result.notes.append(f"the set in force then is not complete in the archive: {err}")
        return result
    if policy is None:
        result.notes.append("the policy of that time was not archived: the site's current policy is used")
        policy = config.policy
    secret = policy.secret_of_version(stored.random_secret_version)
    if secret is None:
        result.notes.append(f"random-selection secret version {stored.random_secret_version} is not kept "
                            "(policy.retired_random_secrets): the random draw is re-run with the current one")
    elif stored.random_secret_version != policy.random_secret_version:
        policy = policy.model_copy(update={"random_secret": secret,
                                           "random_secret_version": stored.random_secret_version})
    verdict = assess(record, stored.seen, rules, policy, now=stored.at, site_tz=config.site.timezone)
    if stored.rau_floor:
        verdict = with_floor(verdict, (stored.rau_floor, stored.rau_floor_reason), policy)
        result.notes.append(f"the RAU had raised this truck to {stored.rau_floor}: applied again")
    result.replayed = _summary(verdict.channel, verdict.random_selected, [h.indicator_id for h in verdict.hits],
                               verdict.indicator_set)
    result.differences = _differences(result.stored, result.replayed)
    return result


def _summary(channel: str, random_selected: bool, hits: list[str], indicator_set: str) -> dict[str, Any]:
    return {"channel": channel, "random_selected": random_selected, "hits": sorted(hits),
            "indicator_set": indicator_set}


def _differences(stored: dict[str, Any], replayed: dict[str, Any]) -> list[str]:
    out = []
    if stored["channel"] != replayed["channel"]:
        out.append(f"channel: {stored['channel']} then, {replayed['channel']} now")
    if stored["random_selected"] != replayed["random_selected"]:
        out.append(f"random selection: {stored['random_selected']} then, {replayed['random_selected']} now")
    gone = sorted(set(stored["hits"]) - set(replayed["hits"]))
    new = sorted(set(replayed["hits"]) - set(stored["hits"]))
    if gone:
        out.append(f"hits no longer found: {', '.join(gone)}")
    if new:
        out.append(f"hits found now only: {', '.join(new)}")
    return out
