"""The site's own indicator set: the local risk analyst's profiles in one file.

`<data_dir>/indicators/local.json` holds every local indicator the site runs with. An
edit adds an indicator or replaces one with the same id at the next version, and stamps
the set with a new version label. Before the file is replaced the new set must load and
merge with every other set the site runs with, so a bad edit never reaches the lanes.
The console (through the core) and `edge-agent indicators add-local` both edit it here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.errors import IndicatorError
from edge_agent.local_rules.indicators import FORMAT, IndicatorSet, load_indicator_set, site_indicator_files

LOCAL_FILE = "local.json"


def local_set_path(data_dir: Path) -> Path:
    return Path(data_dir) / "indicators" / LOCAL_FILE


def read_local_set(path: Path) -> dict[str, Any]:
    """The local set document; an empty one when there is no file yet."""
    if not path.exists():
        return {"format": FORMAT, "version": "", "lists": {}, "indicators": []}
    return json.loads(path.read_text(encoding="utf-8"))


def updated_local_set(doc: dict[str, Any], indicator: dict[str, Any], site: str, user: str,
                      at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the document with `indicator` added or replacing its id at version + 1, the indicator as saved)."""
    raw = {**indicator, "level": "local", "author": indicator.get("author") or user, "owner": site}
    previous = [i for i in doc.get("indicators", []) if i.get("id") == raw.get("id")]
    raw["version"] = max(int(i.get("version", 1)) for i in previous) + 1 if previous else 1
    out = {**doc, "indicators": [i for i in doc.get("indicators", []) if i.get("id") != raw.get("id")] + [raw]}
    out["version"] = f"local-{site}-{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    out["issued_at"] = at.astimezone(UTC).isoformat()
    return out, raw


def checked_local_set(doc: dict[str, Any], path: Path, indicator_files: list[Path], data_dir: Path,
                      channels: list[str], in_force: IndicatorSet | None = None) -> IndicatorSet:
    """The local set loaded and merged with the site's other sets; IndicatorError if it
    cannot run, or if one of its ids belongs to a central or regional indicator (in the
    site's files or in `in_force`, the set the agent runs with, the RAU's bundles included):
    a local indicator may add, never replace, and the clash is said now, not when the
    next bundle arrives."""
    local = load_indicator_set(doc, channels=channels)
    others = [load_indicator_set(p) for p in site_indicator_files(indicator_files, data_dir) if p != path]
    higher = {i.id: i for s in (*others, *([in_force] if in_force is not None else [])) for i in s.indicators
              if i.level != "local"}
    clashes = [(i.id, f"the id belongs to the {higher[i.id].level} indicator {i.id} (version "
                      f"{higher[i.id].version}); a local indicator cannot replace it: choose another id")
               for i in local.indicators if i.id in higher]
    if clashes:
        raise IndicatorError(clashes, str(path))
    return IndicatorSet.merge(*others, local)
